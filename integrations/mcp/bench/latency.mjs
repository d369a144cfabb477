// Benchmark (c): the latency the gate adds to a tools/call that agate allows, over stdio.
// An MCP client (the SDK's) calls lookup_order on the toy server directly, and through
// agate-mcp-gate (stdio both sides, agate-server --store memory), sequentially, interleaved in
// rounds so both see the same machine. Prints p50 and p99 of each, and of the difference.
//
//   node bench/latency.mjs [--calls 5000] [--unix] [--noop] [--skip-agate]
//     --unix: agate on a Unix socket, not TCP; --noop: agate-noop-server (a constant ALLOW), to
//     tell the proxy and the round trip apart from agate-server's own work; --skip-agate: a mapping
//     with `lookup_order: {evaluate: false}`, the proxy alone.
import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXAMPLE_MATRIX, startAgateServer } from "@agate/client/testing";
import { GATE_CLI, MAPPING, TOY } from "../tests/helpers.mjs";

const calls = process.argv.includes("--calls") ? Number(process.argv[process.argv.indexOf("--calls") + 1]) : 5000;
const unix = process.argv.includes("--unix");
const noop = process.argv.includes("--noop");
const listen = unix ? `unix:${join(mkdtempSync(join(tmpdir(), "agate-bench-")), "agate.sock")}` : "127.0.0.1:0";
const bin = process.env.AGATE_BIN ?? "/opt/agate-baseline/bin";
const agate = await startAgateServer(
  noop
    ? { binary: `${bin}/agate-noop-server`, args: ["--listen", listen] }
    : { args: ["--matrix", EXAMPLE_MATRIX, "--listen", listen, "--store", "memory"] },
);

async function connect(args) {
  const client = new McpClient({ name: "bench", version: "1.0.0" });
  await client.connect(new StdioClientTransport({ command: process.execPath, args, stderr: "inherit" }));
  return client;
}
const direct = await connect([TOY]);
let mapping = MAPPING;
if (process.argv.includes("--skip-agate")) {
  mapping = join(mkdtempSync(join(tmpdir(), "agate-bench-")), "mapping.yaml");
  writeFileSync(mapping, "tenant: acme\ntools:\n  lookup_order: {evaluate: false}\n");
}
const gated = await connect([GATE_CLI, "--agate", agate.target, "--mapping", mapping, "--quiet", "--", process.execPath, TOY]);

let n = 0;
const call = (client) => client.callTool({ name: "lookup_order", arguments: { order_id: `o-${n++}` } });
const samples = { direct: [], gate: [] };
const clients = { direct, gate: gated };
for (const c of Object.values(clients)) for (let i = 0; i < 1000; i++) await call(c); // warm up
const round = 250;
for (let done = 0; done < calls; done += round) {
  for (const [name, client] of Object.entries(clients)) {
    for (let i = 0; i < round; i++) {
      const t = process.hrtime.bigint();
      const result = await call(client);
      samples[name].push(Number(process.hrtime.bigint() - t) / 1e3);
      if (result.isError) throw new Error(JSON.stringify(result));
    }
  }
}
const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const us = (x) => `${(x / 1000).toFixed(3)} ms`;
console.log(`tools/call lookup_order over stdio (ALLOW), ${calls} sequential calls each; ${noop ? "agate-noop-server" : "agate-server"} at ${agate.target}${mapping === MAPPING ? "" : ", agate skipped"}`);
for (const name of ["direct", "gate"]) console.log(`${name.padEnd(7)} p50 ${us(q(samples[name], 0.5))}  p99 ${us(q(samples[name], 0.99))}`);
console.log(`added   p50 ${us(q(samples.gate, 0.5) - q(samples.direct, 0.5))}  p99 ${us(q(samples.gate, 0.99) - q(samples.direct, 0.99))}`);
await direct.close();
await gated.close();
await agate.stop();
