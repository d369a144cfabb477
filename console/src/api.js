// The HTTP/JSON API as the console calls it (docs/operations.md, "HTTP API and metrics"): a
// bearer token, or in development mode (--auth none) the name the operator signed in with, sent
// as X-Agate-Approver. The server authorizes every call; the console only hides what it refuses.

const SESSION_KEY = 'agate-console-session';

export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) ?? null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

function headers(session, extra = {}) {
  const h = { ...extra };
  if (session?.token) h.Authorization = `Bearer ${session.token}`;
  if (session?.name) h['X-Agate-Approver'] = session.name;
  return h;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.status ?? '';
  }
}

async function call(session, method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(session, body ? { 'Content-Type': 'application/json' } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

export const api = {
  whoami: (s) => call(s, 'GET', '/v1/whoami'),
  getCase: (s, id) => call(s, 'GET', `/v1/cases/${encodeURIComponent(id)}`),
  stats: (s) => call(s, 'GET', '/v1/stats'),
  acknowledge: (s, id, decision, comment) =>
    call(s, 'POST', `/v1/cases/${encodeURIComponent(id)}:acknowledge`, { decision, comment }),
  // listCases reads every page (ListCases pages at most 1,000 cases).
  async listCases(s, { state = 'OPEN', lane = '', owner = '' } = {}, limit = 20000) {
    const cases = [];
    let token = '';
    do {
      const q = new URLSearchParams({ page_size: '1000' });
      if (state) q.set('state', state);
      if (lane) q.set('lane', lane);
      if (owner) q.set('owner', owner);
      if (token) q.set('page_token', token);
      const page = await call(s, 'GET', `/v1/cases?${q}`);
      cases.push(...(page.cases ?? []));
      token = page.next_page_token ?? '';
    } while (token && cases.length < limit);
    return cases;
  },
};

// watch follows GET /v1/cases:watch (server-sent events) with fetch, which can send the
// Authorization header that EventSource cannot. It calls onEvent with each CaseEvent (a batch's
// `more` flattened) and onStatus with 'live' or the reason it is reconnecting; it resumes after
// the last event id it saw. Returns a function that stops it.
export function watch(session, onEvent, onStatus) {
  let stopped = false;
  let controller = null;
  let lastId = '';
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const h = headers(session, { Accept: 'text/event-stream' });
        if (lastId) h['Last-Event-ID'] = lastId;
        // The summary view: the queue needs no evidence or history (the case page reads them).
        const response = await fetch('/v1/cases:watch?view=summary', {
          headers: h,
          signal: controller.signal,
        });
        if (!response.ok) {
          const body = await response.json().catch(() => null);
          throw new ApiError(response.status, body);
        }
        onStatus('live');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('id: ')) lastId = line.slice(4);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (!data) continue;
            const event = JSON.parse(data);
            for (const e of [event, ...(event.more ?? [])]) onEvent(e);
          }
        }
        if (!stopped) onStatus('the watch stream ended; reconnecting');
      } catch (e) {
        if (stopped) return;
        onStatus(`watch: ${e.message}; reconnecting`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
