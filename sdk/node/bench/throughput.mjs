// Benchmark (b): requests per second of one Node process keeping 32 Evaluate calls in flight,
// against agate-noop-server (a constant answer: the client's ceiling) and agate-server (the real
// engine, --store memory), in the same run. Every call has a fresh request_id (the client
// generates one), so agate-server decides each one.
//
//   node bench/throughput.mjs [--concurrency 32] [--seconds 10]
import { Client } from "../dist/index.js";
import { startAgateServer } from "../dist/testing.js";
import { flags, fmt, summary } from "./stats.mjs";

const opts = flags({ concurrency: "32", seconds: "10" });
const concurrency = Number(opts.concurrency);
const seconds = Number(opts.seconds);
const bin = process.env.AGATE_BIN ?? "/opt/agate-baseline/bin";
const servers = {
  "agate-noop-server": { binary: `${bin}/agate-noop-server`, args: ["--listen", "127.0.0.1:0"] },
  "agate-server": { binary: process.env.AGATE_SERVER ?? `${bin}/agate-server` },
};
const request = () => ({ tenantId: "acme", action: { type: "send_reply", customerFacing: true }, model: { confidence: 0.93 } });

async function measure(name, options) {
  const server = await startAgateServer(options);
  const client = new Client(server.target, { deadlineMs: 2000 });
  const run = async (ms, samples) => {
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < end) {
          const t = process.hrtime.bigint();
          const d = await client.evaluate(request());
          samples?.push(process.hrtime.bigint() - t);
          if (d.verdict !== "ALLOW") throw new Error(`${name}: ${d.verdict} ${d.reason}`);
        }
      }),
    );
  };
  await run(1000); // warm up
  const samples = [];
  const t0 = process.hrtime.bigint();
  await run(seconds * 1000, samples);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = summary(samples);
  console.log(`${name.padEnd(18)} ${fmt(s.n / elapsed)} req/s  p50 ${fmt(s.p50)} us  p99 ${fmt(s.p99)} us  (${s.n} calls, ${client.counters().failedClosed} failed closed)`);
  client.close();
  await server.stop();
}

console.log(`one Node process, ${concurrency} calls in flight, ${seconds} s each, fresh request_ids`);
for (const [name, options] of Object.entries(servers)) await measure(name, options);
