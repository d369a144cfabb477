// The operator console in a real browser (ctest label `browser`): Debian's chromium, headless,
// driven by puppeteer-core (nothing downloads a browser), against a real agate-server with an
// access policy over TLS (bench/dev_pki writes the keys, tokens and policy), and then one in
// development mode (--auth none).
//
//   node console/test/browser_test.mjs --server BUILD/server/agate-server \
//     --dev-pki BUILD/bench/dev_pki --matrix deploy/examples/escalation-matrix.yaml \
//     --console-dir BUILD/console [--screenshots docs] [--big 1000]
//
// It checks: an Evaluate opens a case that appears in the queue without a reload; an allowed
// approver (bob, finance-approver) approves it; the agent's retry is ALLOW exactly once; a
// disallowed user (carol, support-lead) sees no approve button and her forged call is refused
// (403); the development sign-in. It measures, and prints (docs/perf.md; no timing is asserted):
// the first page load's bytes transferred, Evaluate -> case on screen over 20 cases, and the
// queue with --big open cases (load time, longest task, a live update's latency).
//
// The browser and the servers are always ended (finally, and on a global timeout).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import puppeteer from 'puppeteer-core';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    'dev-pki': { type: 'string' },
    matrix: { type: 'string' },
    'console-dir': { type: 'string' },
    screenshots: { type: 'string' },
    big: { type: 'string', default: '1000' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '240' },
  },
});
for (const a of ['server', 'dev-pki', 'matrix', 'console-dir']) {
  if (!args[a]) {
    console.error(`browser_test: --${a} is required`);
    process.exit(2);
  }
}

const children = [];
let browser = null;
const dir = mkdtempSync(join(tmpdir(), 'agate-console-test-'));

async function cleanup() {
  if (browser) await browser.close().catch(() => browser.process()?.kill('SIGKILL'));
  browser = null;
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
const watchdog = setTimeout(async () => {
  console.error(`browser_test: timed out after ${args.timeout} s`);
  await cleanup();
  process.exit(1);
}, Number(args.timeout) * 1000);

// ctest's own timeout, or ^C: end the browser and the servers too.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, async () => {
    await cleanup();
    process.exit(1);
  });
}

// startServer runs agate-server with flags and resolves with its HTTP port (from its log).
function startServer(flags, name) {
  const child = spawn(args.server, [
    '--matrix', args.matrix, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0',
    '--store', 'memory', '--console-dir', args['console-dir'], ...flags,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no HTTP port in 20 s:\n${log}`)), 20000);
    const read = (chunk) => {
      log += chunk;
      const m = log.match(/serving HTTP on 127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => reject(new Error(`${name} exited ${code}:\n${log}`)));
  });
}

// request sends one HTTP(S) request and resolves with {status, headers, body (Buffer)}.
function request(base, method, path, { token, body, headers = {}, ca } = {}) {
  const url = new URL(base);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // The path goes as given (not resolved against base: '/../x' and '//x' must reach the server).
    const req = lib.request({
      host: url.hostname, port: url.port, path, method, ca, timeout: 10000,
      headers: {
        ...headers,
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'Content-Type': 'application/json' } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

async function main() {
  const pki = spawnSync(args['dev-pki'], [dir], { encoding: 'utf8' });
  assert.equal(pki.status, 0, pki.stderr);
  const token = (name) => readFileSync(join(dir, `${name}.token`), 'utf8').trim();
  const ca = readFileSync(join(dir, 'ca.crt'));
  const port = await startServer([
    '--access', join(dir, 'access.yaml'), '--tls-cert', join(dir, 'server.crt'),
    '--tls-key', join(dir, 'server.key'),
  ], 'agate-server (access policy)');
  const base = `https://127.0.0.1:${port}`;
  const call = (method, path, opts = {}) => request(base, method, path, { ca, ...opts });
  let item = 0;
  const evaluate = async (extra = {}) => {
    const n = ++item;
    const r = await call('POST', '/v1/evaluate', {
      token: token('agent'),
      body: {
        request_id: `r-${n}-${Date.now()}`, tenant_id: 'acme', agent_id: 'support-bot',
        workflow_id: 'refunds', item_id: `order-${n}`,
        action: { type: 'refund', amount: 400, currency: 'EUR', target: `order-${n}` },
        evidence: { original_input: `Customer ${n}: please refund my order`, justification: 'damaged in transit',
          links: 'https://tickets.example.com/T-1' },
        ...extra,
      },
    });
    assert.equal(r.status, 200, r.body.toString());
    return JSON.parse(r.body);
  };

  // Static files: content types, caching, no path traversal.
  const index = await call('GET', '/');
  assert.equal(index.status, 200);
  assert.match(index.headers['content-type'], /^text\/html/);
  assert.equal(index.headers['cache-control'], 'no-cache');
  const script = index.body.toString().match(/src="(\/app-[A-Z0-9]+\.js)"/)[1];
  const js = await call('GET', script);
  assert.match(js.headers['content-type'], /^text\/javascript/);
  assert.match(js.headers['cache-control'], /immutable/);
  assert.equal((await call('GET', '/', { headers: { 'If-None-Match': index.headers.etag } })).status, 304);
  for (const path of ['/../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd',
    '//etc/passwd', '/.gitignore', '/nope.js']) {
    const r = await call('GET', path);
    assert.equal(r.status, 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body.toString(), /root:/);
  }
  // Compressed answers decode to the same bytes (gzip when accepted; never brotli).
  for (const enc of ['br', 'gzip']) {
    const r = await call('GET', script, { headers: { 'Accept-Encoding': enc } });
    const got = r.headers['content-encoding'] === 'br' ? brotliDecompressSync(r.body)
      : r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
    assert.ok(got.equals(js.body), `${enc}: the body differs after decoding (${r.headers['content-encoding']})`);
  }

  browser = await puppeteer.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--ignore-certificate-errors', '--disable-gpu', '--window-size=1400,900'],
    defaultViewport: { width: 1400, height: 900 },
    protocolTimeout: 60000,
  });

  // First page load: every byte the browser received (headers and bodies, as sent) until the
  // sign-in page is idle, then through the signed-in queue.
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  // Bytes by request: loadingFinished's total (headers and body as sent) once a request ends,
  // what dataReceived counted so far for one still open (the watch stream).
  const partial = new Map();
  const done = new Map();
  const encodings = new Set();
  cdp.on('Network.dataReceived', (e) => partial.set(e.requestId, (partial.get(e.requestId) ?? 0) + e.encodedDataLength));
  cdp.on('Network.loadingFinished', (e) => done.set(e.requestId, e.encodedDataLength));
  cdp.on('Network.responseReceived', (e) => {
    const enc = e.response.headers['content-encoding'] ?? e.response.headers['Content-Encoding'];
    if (enc) encodings.add(enc);
  });
  const transferred = () => {
    let n = 0;
    for (const v of done.values()) n += v;
    for (const [id, v] of partial) if (!done.has(id)) n += v;
    return n;
  };
  await page.goto(`${base}/`, { waitUntil: 'networkidle0' });
  const firstLoad = transferred();
  await page.waitForSelector('#token');
  await page.type('#token', token('bob'));
  await page.click('#signin-token');
  await page.waitForFunction(() => document.querySelector('#watch-status')?.textContent.includes('live'));
  await page.waitForSelector('#queue-count');
  const signedInLoad = transferred();
  assert.match(await page.$eval('#who', (e) => e.textContent), /bob@example.com/);

  // Evaluate opens a case; it appears without a reload.
  await page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const tr of document.querySelectorAll('tr[data-case-id]')) {
        window.__seen[tr.dataset.caseId] ??= Date.now();
      }
    }).observe(document.body, { childList: true, subtree: true });
  });
  const navigations = [];
  page.on('framenavigated', (f) => navigations.push(f.url()));
  // signedIn opens a page in a browser context of its own, signed in with name's token.
  const signedIn = async (name) => {
    const context = await browser.createBrowserContext();
    const p = await context.newPage();
    p.setDefaultTimeout(15000);
    await p.goto(`${base}/`);
    await p.waitForSelector('#token');
    await p.type('#token', token(name));
    await p.click('#signin-token');
    await p.waitForSelector('#queue-count');
    return [context, p];
  };
  const opened = await evaluate();
  assert.equal(opened.verdict, 'VERDICT_BLOCK');
  assert.equal(opened.lane, 'financial');
  const caseId = opened.case_id;
  await page.waitForSelector(`tr[data-case-id="${caseId}"]`);
  assert.deepEqual(navigations, [], 'the queue updated without a navigation');
  const row = await page.$eval(`tr[data-case-id="${caseId}"]`, (e) => e.textContent);
  assert.match(row, /finance-approver/);
  assert.match(row, /refund-over-limit \(.*action\.amount=400/);

  // Latency: Evaluate -> the case's row on screen, 20 cases.
  const latencies = [];
  for (let i = 0; i < 20; ++i) {
    const t0 = Date.now();
    const r = await evaluate();
    await page.waitForFunction((id) => window.__seen[id], { polling: 'mutation' }, r.case_id);
    latencies.push((await page.evaluate((id) => window.__seen[id], r.case_id)) - t0);
  }

  // The allowed approver approves it on the case page.
  await page.click(`tr[data-case-id="${caseId}"] a`);
  await page.waitForSelector('#approve');
  assert.match(await page.$eval('#missing', (e) => e.textContent), /evidence "customer_record" the lane requires/);
  if (args.screenshots) await page.screenshot({ path: join(args.screenshots, 'console-case.png'), fullPage: true });
  await page.type('#comment', 'receipt checked');
  await page.click('#approve');
  await page.waitForFunction(() => document.querySelector('#case-state')?.textContent === 'APPROVED');
  assert.match(await page.$eval('#history', (e) => e.textContent), /bob@example\.com.*receipt checked/s);
  assert.equal(await page.$('#approve'), null, 'no buttons on a closed case');

  // The agent's retry is ALLOW exactly once.
  const retry = { item_id: 'order-1', action: { type: 'refund', amount: 400, currency: 'EUR', target: 'order-1' },
    approval: { case_id: caseId } };
  item = 0;
  const first = await evaluate(retry);
  const second = await evaluate(retry);
  item = 1000;
  assert.equal(first.verdict, 'VERDICT_ALLOW', JSON.stringify(first));
  assert.notEqual(second.verdict, 'VERDICT_ALLOW', JSON.stringify(second));

  // A disallowed user: carol (support-lead) sees the case but no approve button; her forged
  // call is refused, and the case stays open.
  const other = await evaluate();
  const [carolContext, carol] = await signedIn('carol');
  await carol.waitForSelector(`tr[data-case-id="${other.case_id}"]`);
  await carol.click(`tr[data-case-id="${other.case_id}"] a`);
  await carol.waitForSelector('#no-actions');
  assert.equal(await carol.$('#approve'), null);
  assert.equal(await carol.$('#reject'), null);
  const forged = await call('POST', `/v1/cases/${other.case_id}:acknowledge`, {
    token: token('carol'), body: { decision: 'DECISION_APPROVE', comment: 'forged' },
  });
  assert.equal(forged.status, 403, forged.body.toString());
  assert.match(JSON.parse(forged.body).message, /carol@example\.com may not act on case/);
  const still = JSON.parse((await call('GET', `/v1/cases/${other.case_id}`, { token: token('bob') })).body);
  assert.equal(still.case.state, 'CASE_STATE_OPEN');
  // And the agent's token cannot approve either.
  const agentAck = await call('POST', `/v1/cases/${other.case_id}:acknowledge`, {
    token: token('agent'), body: { decision: 'DECISION_APPROVE' },
  });
  assert.equal(agentAck.status, 403);
  await carolContext.close();

  if (args.screenshots) {
    await page.goto(`${base}/#/`);
    await page.waitForSelector(`tr[data-case-id="${other.case_id}"]`);
    await page.screenshot({ path: join(args.screenshots, 'console-queue.png') });
  }

  // Statistics: the charts are drawn from GetStats (an admin sees every tenant's triggers).
  const [admin, adminPage] = await signedIn('admin');
  await adminPage.goto(`${base}/#/stats`);
  await adminPage.waitForSelector('#chart-fired text');
  assert.match(await adminPage.$eval('#chart-fired', (e) => e.textContent), /refund-over-limit/);
  if (args.screenshots) await adminPage.screenshot({ path: join(args.screenshots, 'console-stats.png'), fullPage: true });
  await admin.close();

  // The queue with many open cases: load, the longest task, a live update.
  const big = Number(args.big);
  for (let done = 0; done < big;) {
    const batch = Math.min(50, big - done);
    await Promise.all(Array.from({ length: batch }, () => evaluate()));
    done += batch;
  }
  await page.goto(`${base}/#/`);
  const t0 = Date.now();
  await page.reload();
  await page.evaluate(() => {
    window.__longest = 0;
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-case-id]').length >= n,
    { timeout: 60000 }, big);
  const bigLoad = Date.now() - t0;
  await page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const tr of document.querySelectorAll('tr[data-case-id]')) window.__seen[tr.dataset.caseId] ??= Date.now();
    }).observe(document.body, { childList: true, subtree: true });
  });
  await new Promise((r) => setTimeout(r, 3000)); // the countdowns tick over every row
  const t1 = Date.now();
  const late = await evaluate();
  await page.waitForFunction((id) => window.__seen[id], { polling: 'mutation' }, late.case_id);
  const bigLatency = (await page.evaluate((id) => window.__seen[id], late.case_id)) - t1;
  const longest = await page.evaluate(() => window.__longest);
  const rows = await page.$$eval('tr[data-case-id]', (r) => r.length);

  // Development mode: the development sign-in, acting as the name given.
  const devPort = await startServer(['--auth', 'none'], 'agate-server (--auth none)');
  const devBase = `http://127.0.0.1:${devPort}`;
  const dev = await request(devBase, 'POST', '/v1/evaluate', {
    body: { request_id: 'd1', tenant_id: 'acme', agent_id: 'bot', item_id: 'x', action: { type: 'refund', amount: 900 } },
  });
  const devCase = JSON.parse(dev.body).case_id;
  const devPage = await browser.newPage();
  devPage.setDefaultTimeout(15000);
  await devPage.goto(`${devBase}/`);
  await devPage.waitForSelector('#dev-name');
  await devPage.type('#dev-name', 'controller');
  await devPage.click('#signin-dev');
  await devPage.waitForSelector(`tr[data-case-id="${devCase}"]`);
  await devPage.goto(`${devBase}/#/case/${devCase}`);
  await devPage.waitForSelector('#reject');
  await devPage.click('#reject');
  await devPage.waitForFunction(() => document.querySelector('#case-state')?.textContent === 'REJECTED');
  assert.match(await devPage.$eval('#history', (e) => e.textContent), /controller/);

  console.log(`browser_test: ok
  first page load (sign-in page, cache disabled): ${kb(firstLoad)} transferred; through the signed-in queue: ${kb(signedInLoad)} (content-encoding seen: ${[...encodings].join(', ') || 'none'})
  Evaluate -> case on screen, 20 cases: median ${median(latencies)} ms, max ${Math.max(...latencies)} ms (${latencies.join(' ')})
  queue with ${rows} open cases: rendered ${bigLoad} ms after reload; longest task ${Math.round(longest)} ms; a live update on it ${bigLatency} ms`);
}

try {
  await main();
  clearTimeout(watchdog);
  await cleanup();
} catch (e) {
  console.error('browser_test: FAILED:', e);
  await cleanup();
  process.exit(1);
}
