// A case: the evidence packet, what is missing, the votes toward the lane's quorum, the full
// history with who did what, and approve / reject / resolve for those the server would let act.
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Countdown } from './queue.jsx';
import { decisionName, firedText, mayAcknowledge, stateName, time, verdictName } from './format.js';

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const safeLink = (l) => /^https?:\/\//i.test(l);

function Field({ label, children, empty }) {
  return (
    <div class="field">
      <h3>{label}</h3>
      {children ?? <p class="dim">{empty ?? 'none'}</p>}
    </div>
  );
}

function Missing({ c }) {
  const items = [];
  for (const name of c.missing_evidence ?? []) items.push(`evidence "${name}" the lane requires was not sent`);
  for (const f of c.fired ?? []) if (f.error) items.push(`trigger ${f.trigger_id}: ${f.error}`);
  for (const [name, t] of Object.entries(c.evidence?.truncated ?? {})) {
    items.push(`evidence "${name}" was cut: ${t.kept_bytes} of ${t.size} bytes kept (sha256 ${t.sha256.slice(0, 12)}…)`);
  }
  const approvals = (c.votes ?? []).filter((v) => v.decision === 'DECISION_APPROVE').length;
  if (c.state === 'CASE_STATE_OPEN' && c.approvals_required > 1 && approvals < c.approvals_required) {
    items.push(`${c.approvals_required - approvals} more approval${c.approvals_required - approvals === 1 ? '' : 's'}`);
  }
  return (
    <Field label="What is missing">
      {items.length ? <ul id="missing">{items.map((i) => <li key={i}>{i}</li>)}</ul> : null}
    </Field>
  );
}

function Actions({ session, me, c, onDone }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  if (!mayAcknowledge(me, c)) {
    return c.state === 'CASE_STATE_OPEN' ? (
      <p class="dim" id="no-actions">You may not act on this case: only {[c.owner, c.backup].filter(Boolean).join(' or ')} may.</p>
    ) : null;
  }
  const act = async (decision) => {
    setBusy(true);
    setError('');
    try {
      const answer = await api.acknowledge(session, c.id, decision, comment);
      setComment('');
      onDone(answer.case);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="actions">
      <textarea id="comment" rows="2" placeholder="comment (kept in the case's history)" value={comment}
        onInput={(e) => setComment(e.target.value)} />
      <div>
        <button id="approve" class="approve" disabled={busy} onClick={() => act('DECISION_APPROVE')}>Approve</button>
        <button id="reject" class="reject" disabled={busy} onClick={() => act('DECISION_REJECT')}>Reject</button>
        <button id="resolve" disabled={busy} onClick={() => act('DECISION_RESOLVE')}>Resolve</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function CasePage({ session, me, id, live }) {
  const [c, setCase] = useState(null);
  const [error, setError] = useState('');
  // Read when opened, and again whenever the watch stream (summaries, without the evidence and
  // history shown here) says the case changed.
  useEffect(() => {
    api.getCase(session, id).then((r) => setCase(r.case), (e) => setError(e.message));
  }, [id, session, live]);
  if (error) return <main><p class="error" role="alert">{error}</p></main>;
  if (!c) return <main><p>Loading…</p></main>;
  const e = c.evidence ?? {};
  const approvals = (c.votes ?? []).filter((v) => v.decision === 'DECISION_APPROVE').length;
  return (
    <main class="case" data-case-id={c.id}>
      <p><a href="#/">← Queue</a></p>
      <h1>{c.id}</h1>
      <div class="summary">
        <span class={`state s-${stateName(c.state)}`} id="case-state">{stateName(c.state)}</span>
        <span class={`verdict v-${verdictName(c.verdict)}`}>{verdictName(c.verdict)}</span>
        <span>lane <b>{c.lane}</b></span>
        <span>tenant <b>{c.tenant_id}</b></span>
        <span>owner <b>{c.current_owner || c.owner}</b>, backup <b>{c.backup || '—'}</b>{c.fallback ? <>, fallback <b>{c.fallback}</b></> : null}</span>
        <span>agent <b>{c.agent_id}</b></span>
        {c.state === 'CASE_STATE_OPEN' && <span>SLA <Countdown deadline={c.sla_deadline} /></span>}
      </div>
      {c.approvals_required > 1 && (
        <div class="quorum" id="quorum">
          <b>{approvals} of {c.approvals_required}</b> approvals
          <progress max={c.approvals_required} value={approvals} />
          {(c.votes ?? []).map((v) => (
            <span key={v.principal?.subject} class="vote">{v.principal?.subject}: {decisionName(v.decision)}</span>
          ))}
        </div>
      )}
      <Actions session={session} me={me} c={c} onDone={setCase} />
      <div class="grid">
        <section>
          <h2>Evidence</h2>
          <Field label="Original input">{e.original_input ? <pre>{e.original_input}</pre> : null}</Field>
          <Field label="Proposed action">{e.proposed_action ? <pre>{pretty(e.proposed_action)}</pre> : null}</Field>
          <Field label="Rules that fired">
            {(e.rules ?? []).length ? <ul>{e.rules.map((r) => <li key={r}><code>{r}</code></li>)}</ul> : null}
          </Field>
          <Field label="Values read">
            {(c.fired ?? []).length ? <ul>{c.fired.map((f) => <li key={f.trigger_id}>{firedText(f)}</li>)}</ul> : null}
          </Field>
          <Field label="Retrieved context">{e.retrieved_context ? <pre>{e.retrieved_context}</pre> : null}</Field>
          <Field label="Recent history">
            {(e.recent_history ?? []).length ? <ul>{e.recent_history.map((h) => <li key={h}>{h}</li>)}</ul> : null}
          </Field>
          <Field label="Links">
            {(e.links ?? []).length ? (
              <ul>{e.links.map((l) => <li key={l}>{safeLink(l) ? <a href={l} rel="noopener noreferrer" target="_blank">{l}</a> : l}</li>)}</ul>
            ) : null}
          </Field>
          <Field label="Other evidence">
            {Object.keys(e.attached ?? {}).length ? (
              <dl>{Object.entries(e.attached).map(([k, v]) => <Fragment key={k}><dt>{k}</dt><dd>{v}</dd></Fragment>)}</dl>
            ) : null}
          </Field>
          <Missing c={c} />
        </section>
        <section>
          <h2>History</h2>
          <table id="history">
            <thead><tr><th>When</th><th>What</th><th>Who</th><th>State</th><th>Comment</th></tr></thead>
            <tbody>
              {(c.history ?? []).map((t, i) => (
                <tr key={i}>
                  <td>{time(t.time)}</td>
                  <td>{t.event}</td>
                  <td>{t.principal?.subject || t.actor}<div class="dim">{(t.principal?.kind ?? '').replace('PRINCIPAL_KIND_', '').toLowerCase()}</div></td>
                  <td>{stateName(t.state)}</td>
                  <td>{t.comment}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Requests</h3>
          <p class="dim">requested by {(c.requested_by ?? []).join(', ') || '—'}{c.on_behalf_of ? ` on behalf of ${c.on_behalf_of}` : ''}; request ids {(c.request_ids ?? []).join(', ')}; matrix {c.matrix_version}</p>
        </section>
      </div>
    </main>
  );
}
