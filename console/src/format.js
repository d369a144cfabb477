// Small formatting helpers shared by the pages.

export const short = (s, prefix) => (s && s.startsWith(prefix) ? s.slice(prefix.length) : s ?? '');
export const verdictName = (v) => short(v, 'VERDICT_');
export const stateName = (s) => short(s, 'CASE_STATE_');
export const decisionName = (d) => short(d, 'DECISION_');

// duration renders milliseconds as "1h 02m", "3m 05s" or "12s".
export function duration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

// protoDuration parses a proto3 JSON Duration ("1.5s") into milliseconds.
export const protoDuration = (d) => (d ? parseFloat(d) * 1000 : 0);

export const time = (t) => (t ? new Date(t).toLocaleString() : '');

// value renders an observed value (a google.protobuf.Value in JSON) compactly.
export const value = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// firedText: "refund-over-limit (action.amount=400, action.type=refund)".
export function firedText(f) {
  const values = (f.values ?? []).map((v) => `${v.field}=${value(v.value)}`).join(', ');
  return values ? `${f.trigger_id} (${values})` : f.trigger_id;
}

// mayAcknowledge mirrors the server's rule (cases/case_store.cc, Authorize) so that the console
// shows the buttons only to whom the server would let act: not agents, not a requester of the
// case, a member of the owner, backup or (route_to_fallback) fallback group for the case's
// tenant. The server still checks every call.
export function mayAcknowledge(me, c) {
  if (!me || c.state !== 'CASE_STATE_OPEN') return false;
  const subject = me.development ? me.name : me.principal?.subject;
  if (!subject) return false;
  if (!me.development && me.principal?.kind === 'PRINCIPAL_KIND_AGENT') return false;
  if ((c.requested_by ?? []).includes(subject)) return false;
  const groups = me.development ? { [me.name]: ['*'] } : me.groups ?? {};
  const may = [c.owner, c.backup];
  if (c.on_timeout === 'TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK' && c.fallback) may.push(c.fallback);
  return may.some((g) => g && (groups[g] ?? []).some((t) => t === '*' || t === c.tenant_id));
}
