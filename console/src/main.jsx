// The operator console: sign-in, then the queue (#/), a case (#/case/ID) and the statistics
// (#/stats). The open cases live in one map, loaded with ListCases and kept current by the
// watch stream, so every page updates without a reload.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, loadSession, saveSession, watch } from './api.js';
import { CasePage } from './case.jsx';
import { QueuePage } from './queue.jsx';
import { StatsPage } from './stats.jsx';
import './app.css';

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function SignIn({ onSession }) {
  const [development, setDevelopment] = useState(null);
  const [token, setToken] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    // Without a token a server in development mode (--auth none) answers; one with an access
    // policy says 401.
    api.whoami(null).then((me) => setDevelopment(me.development), () => setDevelopment(false));
  }, []);
  const signIn = async (session) => {
    try {
      const me = await api.whoami(session);
      saveSession(session);
      onSession(session, me);
    } catch (e) {
      setError(e.message);
    }
  };
  return (
    <main class="signin">
      <h1>agate console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signIn({ token: token.trim() });
        }}
      >
        <label for="token">Bearer token</label>
        <textarea id="token" rows="4" value={token} onInput={(e) => setToken(e.target.value)}
          placeholder="paste a token from your identity provider" />
        <button type="submit" id="signin-token" disabled={!token.trim()}>Sign in</button>
      </form>
      {development && (
        <form
          class="dev"
          onSubmit={(e) => {
            e.preventDefault();
            signIn({ name: name.trim() });
          }}
        >
          <p>This server runs without an access policy (development mode): nobody is verified,
            and you act as the name you give (a member of the group of that name).</p>
          <label for="dev-name">Name</label>
          <input id="dev-name" value={name} onInput={(e) => setName(e.target.value)}
            placeholder="e.g. finance-approver" />
          <button type="submit" id="signin-dev" disabled={!name.trim()}>Development sign-in</button>
        </form>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </main>
  );
}

function App() {
  const hash = useHash();
  const [session, setSession] = useState(loadSession());
  const [me, setMe] = useState(null);
  const [open, setOpen] = useState(new Map()); // id -> Case, the open cases
  const [events, setEvents] = useState(0); // bumps on every event (the stats page re-reads)
  const [latest, setLatest] = useState(new Map()); // id -> Case from the stream, any state
  const [status, setStatus] = useState('connecting');
  const [loadError, setLoadError] = useState('');

  useEffect(() => {
    if (!session) return;
    api.whoami(session).then(
      (m) => setMe(session.name ? { ...m, name: session.name } : m),
      () => {
        saveSession(null);
        setSession(null);
      },
    );
  }, [session]);

  useEffect(() => {
    if (!session || !me) return;
    // Events that arrive while the list loads are applied after it, in order.
    let pending = [];
    let loaded = false;
    const apply = (map, c) => {
      if (c.state === 'CASE_STATE_OPEN') map.set(c.id, c);
      else map.delete(c.id);
    };
    const reload = () => {
      loaded = false;
      api.listCases(session, { state: 'OPEN' }).then(
        (cases) => {
          const map = new Map(cases.map((c) => [c.id, c]));
          for (const c of pending) apply(map, c);
          pending = [];
          loaded = true;
          setOpen(map);
          setLoadError('');
        },
        (e) => setLoadError(e.message),
      );
    };
    const stop = watch(
      session,
      (event) => {
        const c = event.case;
        if (!c) return;
        setLatest((m) => new Map(m).set(c.id, c));
        setEvents((n) => n + 1);
        if (!loaded) {
          pending.push(c);
          return;
        }
        setOpen((m) => {
          const next = new Map(m);
          apply(next, c);
          return next;
        });
      },
      (s) => {
        setStatus(s);
        if (s === 'live') reload(); // subscribed first: nothing falls between list and stream
      },
    );
    return stop;
  }, [session, me]);

  if (!session) {
    return <SignIn onSession={(s, m) => { setSession(s); setMe(s.name ? { ...m, name: s.name } : m); }} />;
  }
  if (!me) return <main><p>Signing in…</p></main>;
  const who = me.development ? me.name : me.principal?.subject;
  let page;
  if (hash.startsWith('#/case/')) {
    const id = decodeURIComponent(hash.slice('#/case/'.length));
    page = <CasePage session={session} me={me} id={id} live={latest.get(id)} />;
  } else if (hash === '#/stats') {
    page = <StatsPage session={session} events={events} />;
  } else {
    page = <QueuePage session={session} me={me} open={open} />;
  }
  return (
    <div>
      <header>
        <strong>agate</strong>
        <nav>
          <a href="#/" class={hash === '#/' ? 'on' : ''}>Queue</a>
          <a href="#/stats" class={hash === '#/stats' ? 'on' : ''}>Statistics</a>
        </nav>
        <span class={`live ${status === 'live' ? 'ok' : 'bad'}`} id="watch-status">
          {status === 'live' ? '● live' : status}
        </span>
        <span class="who" id="who">
          {who}
          {me.development ? ' (development)' : ''}
          {me.admin && !me.development ? ' (admin)' : ''}
        </span>
        <button
          class="link"
          onClick={() => {
            saveSession(null);
            setSession(null);
            setMe(null);
          }}
        >
          Sign out
        </button>
      </header>
      {loadError && <p class="error" role="alert">{loadError}</p>}
      {page}
    </div>
  );
}

render(<App />, document.getElementById('app'));
