// Benchmark (a): what @agate/client adds to one Evaluate over a raw grpc-js call on the same
// channel. Sequential calls, interleaved in rounds so both see the same machine; fresh request_ids.
//
//   node bench/overhead.mjs [--server noop|agate] [--calls 20000]
//
// noop (default) is agate-noop-server (answers a constant): the client's cost stands out from the
// server's. Prints mean and p50 in microseconds per call.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, create, pb } from "../dist/index.js";
import { startAgateServer } from "../dist/testing.js";
import { flags, fmt, summary } from "./stats.mjs";

const opts = flags({ server: "noop", calls: "20000" });
const calls = Number(opts.calls);
const bin = process.env.AGATE_BIN ?? "/opt/agate-baseline/bin";
const server =
  opts.server === "noop"
    ? await startAgateServer({ binary: `${bin}/agate-noop-server`, args: ["--listen", "127.0.0.1:0"] })
    : await startAgateServer({ binary: process.env.AGATE_SERVER ?? `${bin}/agate-server` });

const client = new Client(server.target, { deadlineMs: 5000 });
const raw = new grpc.Client(server.target, grpc.credentials.createInsecure(), { channelOverride: client.channel });
// The raw call: the same codecs any protobuf-es + grpc-js user would write, nothing else.
const path = "/agate.v1.Agate/Evaluate";
const serialize = (m) => Buffer.from(toBinary(pb.EvaluateRequestSchema, m));
const deserialize = (b) => fromBinary(pb.EvaluateResponseSchema, b);

const json = () => ({
  request_id: randomUUID(),
  tenant_id: "acme",
  action: { type: "send_reply", customer_facing: true },
  model: { confidence: 0.93 },
});
const base = create(pb.EvaluateRequestSchema, {
  tenantId: "acme",
  action: { type: "send_reply", customerFacing: true },
  model: { confidence: 0.93 },
});
const message = () => ({ ...base, requestId: randomUUID() });

const rawCall = (m) =>
  new Promise((resolve, reject) =>
    raw.makeUnaryRequest(path, serialize, deserialize, m, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );

const kinds = {
  "raw grpc-js call": () => rawCall(message()),
  "client.evaluate(message)": () => client.evaluate(message()),
  "client.evaluate(JSON)": () => client.evaluate(json()),
};
const samples = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
for (const run of Object.values(kinds)) for (let i = 0; i < 2000; i++) await run(); // warm up (JIT, connection)
const round = 500;
for (let done = 0; done < calls; done += round) {
  for (const [name, run] of Object.entries(kinds)) {
    for (let i = 0; i < round; i++) {
      const t = process.hrtime.bigint();
      await run();
      samples[name].push(process.hrtime.bigint() - t);
    }
  }
}
const rawSummary = summary(samples["raw grpc-js call"]);
console.log(`server: ${opts.server} (${server.target}), ${calls} sequential calls each, microseconds per call`);
console.log(`${"".padEnd(28)}    mean      p50   overhead (mean, p50)`);
for (const [name, s] of Object.entries(samples)) {
  const x = summary(s);
  console.log(`${name.padEnd(28)}${fmt(x.mean)} ${fmt(x.p50)}   ${fmt(x.mean - rawSummary.mean)} ${fmt(x.p50 - rawSummary.p50)}`);
}
client.close();
raw.close();
await server.stop();
