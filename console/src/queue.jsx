// The queue: the open cases grouped by lane, each with its owner and backup, a live SLA
// countdown (overdue cases marked), the verdict and the fired triggers with the values read.
// Filters: lane, state (other states are read with ListCases), owner.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from './api.js';
import { duration, firedText, stateName, verdictName } from './format.js';

const STATES = ['OPEN', 'APPROVED', 'REJECTED', 'RESOLVED', 'EXPIRED'];

// The SLA countdowns tick without re-rendering the queue: once a second one timer rewrites the
// text and class of every [data-deadline] element (and marks its row overdue), so a queue of
// 1,000 cases costs a few milliseconds a second, not a render.
function countdownText(deadline, now) {
  const left = new Date(deadline).getTime() - now;
  if (left < 0) return ['sla overdue', `overdue ${duration(-left)}`];
  return [left < 5 * 60000 ? 'sla soon' : 'sla', duration(left)];
}

let ticker = null;
function startTicker() {
  if (ticker) return;
  ticker = setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-deadline]')) {
      const [cls, text] = countdownText(el.dataset.deadline, now);
      if (el.className !== cls) el.className = cls;
      if (el.textContent !== text) el.textContent = text;
      el.closest('tr[data-case-id]')?.classList.toggle('overdue', cls === 'sla overdue');
    }
  }, 1000);
}

export function Countdown({ deadline }) {
  useEffect(startTicker, []);
  if (!deadline) return <span class="sla">no SLA</span>;
  const [cls, text] = countdownText(deadline, Date.now());
  return <span class={cls} data-deadline={deadline} title={deadline}>{text}</span>;
}

function Row({ c }) {
  return (
    <tr data-case-id={c.id}>
      <td><a href={`#/case/${encodeURIComponent(c.id)}`}>{c.id}</a></td>
      <td>{c.tenant_id}</td>
      <td>
        {c.current_owner || c.owner}
        {c.current_owner && c.current_owner !== c.owner ? ` (owner ${c.owner})` : ''}
        <div class="dim">backup {c.backup || '—'}</div>
      </td>
      <td>{c.state === 'CASE_STATE_OPEN' ? <Countdown deadline={c.sla_deadline} /> : stateName(c.state)}</td>
      <td><span class={`verdict v-${verdictName(c.verdict)}`}>{verdictName(c.verdict)}</span></td>
      <td class="fired">{(c.fired ?? []).map((f) => <div key={f.trigger_id}>{firedText(f)}</div>)}</td>
      <td>{c.approvals_required > 1 ? `${(c.votes ?? []).filter((v) => v.decision === 'DECISION_APPROVE').length} of ${c.approvals_required}` : ''}</td>
    </tr>
  );
}

// Rows rendered per task while a large queue first appears (no long freeze).
const CHUNK = 200;

export function QueuePage({ session, open }) {
  const [lane, setLane] = useState('');
  const [state, setState] = useState('OPEN');
  const [owner, setOwner] = useState('');
  const [closed, setClosed] = useState(null); // cases of another state, read on demand
  const [error, setError] = useState('');

  useEffect(() => {
    if (state === 'OPEN') return setClosed(null);
    setClosed(null);
    api.listCases(session, { state }, 5000).then(setClosed, (e) => setError(e.message));
  }, [state, session]);

  const all = state === 'OPEN' ? [...open.values()] : closed ?? [];
  // A large queue appears CHUNK rows per task; later updates render whole.
  const [limit, setLimit] = useState(CHUNK);
  useEffect(() => {
    if (limit >= all.length) return;
    const t = setTimeout(() => setLimit((l) => l + CHUNK), 0);
    return () => clearTimeout(t);
  }, [limit, all.length]);
  const lanes = useMemo(() => [...new Set(all.map((c) => c.lane))].sort(), [all.length, state]);
  const owners = useMemo(
    () => [...new Set(all.flatMap((c) => [c.owner, c.backup, c.current_owner]).filter(Boolean))].sort(),
    [all.length, state],
  );
  const shown = all.filter(
    (c) =>
      (!lane || c.lane === lane) &&
      (!owner || c.owner === owner || c.backup === owner || c.current_owner === owner),
  );
  const byLane = new Map();
  const sorted = shown.sort((a, b) => (a.sla_deadline ?? '').localeCompare(b.sla_deadline ?? ''));
  for (const c of sorted.slice(0, limit)) {
    if (!byLane.has(c.lane)) byLane.set(c.lane, []);
    byLane.get(c.lane).push(c);
  }
  return (
    <main>
      <div class="filters">
        <label>Lane <select id="filter-lane" value={lane} onChange={(e) => setLane(e.target.value)}>
          <option value="">all</option>
          {lanes.map((l) => <option key={l} value={l}>{l}</option>)}
        </select></label>
        <label>State <select id="filter-state" value={state} onChange={(e) => setState(e.target.value)}>
          {STATES.map((s) => <option key={s} value={s}>{s.toLowerCase()}</option>)}
        </select></label>
        <label>Owner <select id="filter-owner" value={owner} onChange={(e) => setOwner(e.target.value)}>
          <option value="">anyone</option>
          {owners.map((o) => <option key={o} value={o}>{o}</option>)}
        </select></label>
        <span class="count" id="queue-count">{shown.length} {state.toLowerCase()} case{shown.length === 1 ? '' : 's'}</span>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {state !== 'OPEN' && closed === null && <p>Loading…</p>}
      {byLane.size === 0 && (state === 'OPEN' || closed) && <p class="empty">No cases.</p>}
      {[...byLane].map(([l, cases]) => (
        <section key={l} class="lane">
          <h2>{l} <span class="dim">{cases.length}</span></h2>
          <table>
            <thead><tr><th>Case</th><th>Tenant</th><th>Owner / backup</th><th>SLA</th><th>Verdict</th><th>Fired triggers (values read)</th><th>Quorum</th></tr></thead>
            <tbody>{cases.map((c) => <Row key={c.id} c={c} />)}</tbody>
          </table>
        </section>
      ))}
    </main>
  );
}
