// Statistics: per trigger, how often it fired and how its cases ended, and the median time to a
// decision, as plain SVG bar charts. A trigger that fires far more than the others (over three
// times the median of the triggers that fired) is marked as noisy.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { duration, protoDuration } from './format.js';

const OUTCOMES = [
  ['open', '#d9a400'],
  ['approved', '#2e8540'],
  ['rejected', '#c0392b'],
  ['resolved', '#2c6fbb'],
  ['expired', '#7f8c8d'],
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

// Bars: one horizontal bar per row, stacked from parts [{value, color, title}].
function Bars({ id, rows, format = String, width = 640 }) {
  const label = 220;
  const rowHeight = 22;
  const max = Math.max(1, ...rows.map((r) => r.parts.reduce((a, p) => a + p.value, 0)));
  const scale = (width - label - 60) / max;
  return (
    <svg id={id} class="chart" width={width} height={rows.length * rowHeight + 4} role="img">
      {rows.map((r, i) => {
        let x = label;
        const total = r.parts.reduce((a, p) => a + p.value, 0);
        return (
          <g key={r.name} transform={`translate(0 ${i * rowHeight + 2})`}>
            <text x={label - 6} y="14" text-anchor="end" class={r.noisy ? 'noisy' : ''}>{r.name}</text>
            {r.parts.map((p) => {
              const w = p.value * scale;
              const rect = <rect key={p.title} x={x} y="2" width={w} height={rowHeight - 6} fill={p.color}><title>{p.title}: {format(p.value)}</title></rect>;
              x += w;
              return rect;
            })}
            <text x={x + 4} y="14">{format(total)}{r.noisy ? ' ⚠ noisy' : ''}</text>
          </g>
        );
      })}
    </svg>
  );
}

export function StatsPage({ session, events }) {
  const [stats, setStats] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    // Re-read on case events, at most every 2 s.
    const t = setTimeout(() => api.stats(session).then(setStats, (e) => setError(e.message)), stats ? 2000 : 0);
    return () => clearTimeout(t);
  }, [session, events]);
  if (error) return <main><p class="error" role="alert">{error}</p></main>;
  if (!stats) return <main><p>Loading…</p></main>;
  const triggers = [...(stats.triggers ?? [])]
    .map((t) => ({ ...t, fired: Number(t.fired), ...Object.fromEntries(OUTCOMES.map(([k]) => [k, Number(t[k])])) }))
    .sort((a, b) => b.fired - a.fired);
  // Triggers are kept per tenant: add them up by trigger id.
  const byId = new Map();
  for (const t of triggers) {
    const s = byId.get(t.trigger_id) ?? { ...t, fired: 0, ...Object.fromEntries(OUTCOMES.map(([k]) => [k, 0])), times: [] };
    s.fired += t.fired;
    for (const [k] of OUTCOMES) s[k] += t[k];
    if (t.median_time_to_decision) s.times.push(protoDuration(t.median_time_to_decision));
    byId.set(t.trigger_id, s);
  }
  const rows = [...byId.values()].sort((a, b) => b.fired - a.fired);
  const typical = median(rows.filter((r) => r.fired > 0).map((r) => r.fired));
  const noisy = (r) => rows.length > 2 && r.fired > 3 * typical;
  const decisions = Object.entries(stats.decisions ?? {}).map(([k, v]) => [k, Number(v)]);
  return (
    <main class="stats">
      <h1>Statistics</h1>
      <p>{Number(stats.open_cases)} open cases · matrix {stats.matrix_version} · {Number(stats.shed_calls)} calls shed</p>
      <h2>Triggers: how often each fired</h2>
      <Bars id="chart-fired" rows={rows.map((r) => ({ name: r.trigger_id, noisy: noisy(r), parts: [{ value: r.fired, color: noisy(r) ? '#c0392b' : '#2c6fbb', title: 'fired' }] }))} />
      <h2>How their cases ended</h2>
      <p class="legend">{OUTCOMES.map(([k, c]) => <span key={k}><i style={`background:${c}`} />{k}</span>)}</p>
      <Bars id="chart-outcomes" rows={rows.map((r) => ({ name: r.trigger_id, parts: OUTCOMES.map(([k, c]) => ({ value: r[k], color: c, title: k })) }))} />
      <h2>Median time to decision</h2>
      <Bars id="chart-time" format={(ms) => (ms ? duration(ms) : '—')}
        rows={rows.map((r) => ({ name: r.trigger_id, parts: [{ value: median(r.times), color: '#6c5ce7', title: 'median time to decision' }] }))} />
      <h2>Decisions by verdict</h2>
      <Bars id="chart-decisions" rows={decisions.map(([k, v]) => ({ name: k, parts: [{ value: v, color: '#555', title: k }] }))} />
      {(stats.owners ?? []).length > 0 && (
        <>
          <h2>Owners' load</h2>
          <table>
            <thead><tr><th>Owner</th><th>Tenant</th><th>Open</th><th>Median age</th><th>Oldest</th></tr></thead>
            <tbody>
              {stats.owners.map((o) => (
                <tr key={`${o.owner}/${o.tenant_id}`}><td>{o.owner}</td><td>{o.tenant_id}</td><td>{Number(o.open)}</td>
                  <td>{duration(protoDuration(o.median_age))}</td><td>{duration(protoDuration(o.oldest_age))}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </main>
  );
}
