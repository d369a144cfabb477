// token and tls: the client side of agate's authentication (the server gains it in a parallel
// change), tested against an in-process grpc-js agate that records what each call carried.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { AgateError, Client, create, pb } from "../dist/index.js";
import { allowRequest, startFake } from "./helpers.mjs";

const allow = (call, callback) => callback(null, create(pb.EvaluateResponseSchema, { verdict: pb.Verdict.ALLOW }));
const someCase = (state) => create(pb.CaseSchema, { id: "case_1", state, tenantId: "acme" });

describe("token", () => {
  let fake;
  before(async () => {
    fake = await startFake({
      evaluate: allow,
      getCase: (call, callback) => callback(null, create(pb.GetCaseResponseSchema, { case: someCase(pb.CaseState.OPEN) })),
      acknowledge: (call, callback) =>
        callback(null, create(pb.AcknowledgeResponseSchema, { case: someCase(pb.CaseState.APPROVED) })),
      watchCases: (call) => call.end(),
    });
  });
  after(() => fake.forceStop());

  it("is sent as authorization: Bearer on every call", async () => {
    const client = new Client(fake.target, { deadlineMs: 5000, token: "t0ken" });
    await client.evaluate(allowRequest("tok-1"));
    await client.getCase("case_1");
    await client.acknowledge("case_1", "approve", { approver: "finance-approver" });
    await client.waitForCase("case_1", { timeoutMs: 300, tenantId: "acme" });
    client.close();
    const methods = fake.calls.map((c) => c.method);
    for (const m of ["evaluate", "getCase", "acknowledge", "watchCases"]) assert.ok(methods.includes(m), m);
    for (const call of fake.calls) assert.equal(call.metadata.authorization, "Bearer t0ken", call.method);
    const ack = fake.calls.find((c) => c.method === "acknowledge");
    assert.equal(ack.metadata["x-agate-approver"], "finance-approver");
  });

  it("is absent when not configured", async () => {
    fake.calls.length = 0;
    const client = new Client(fake.target, { deadlineMs: 5000 });
    await client.evaluate(allowRequest("tok-2"));
    client.close();
    assert.equal(fake.calls[0].metadata.authorization, undefined);
  });
});

describe("mutual TLS", () => {
  let dir;
  let fake;
  const file = (name) => join(dir, name);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "agate-tls-"));
    const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=agate test CA",
      "-keyout", "ca.key", "-out", "ca.pem");
    writeFileSync(file("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    for (const who of ["server", "client"]) {
      openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${who}`, "-keyout", `${who}.key`, "-out", `${who}.csr`);
      openssl("x509", "-req", "-in", `${who}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", `${who}.pem`);
    }
    const credentials = grpc.ServerCredentials.createSsl(
      readFileSync(file("ca.pem")),
      [{ cert_chain: readFileSync(file("server.pem")), private_key: readFileSync(file("server.key")) }],
      true, // require and verify a client certificate
    );
    fake = await startFake({ evaluate: allow }, credentials);
    // By name: the certificate's DNS name is checked (TLS sends no IP address as server name).
    fake.target = fake.target.replace("127.0.0.1", "localhost");
  });
  after(async () => {
    await fake?.forceStop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("connects with a client certificate given as file paths, and sends the token", async () => {
    const client = new Client(fake.target, {
      deadlineMs: 5000,
      token: "t0ken",
      tls: { ca: file("ca.pem"), cert: file("client.pem"), key: file("client.key") },
    });
    const d = await client.evaluate(allowRequest("tls-1"));
    client.close();
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.failedClosed, false);
    assert.equal(fake.calls.at(-1).metadata.authorization, "Bearer t0ken");
  });

  it("connects with the PEM contents as Buffers", async () => {
    const client = new Client(fake.target, {
      deadlineMs: 5000,
      tls: { ca: readFileSync(file("ca.pem")), cert: readFileSync(file("client.pem")), key: readFileSync(file("client.key")) },
    });
    assert.equal((await client.evaluate(allowRequest("tls-2"))).verdict, "ALLOW");
    client.close();
  });

  it("fails closed without a client certificate: the server refuses the handshake", async () => {
    const client = new Client(fake.target, { deadlineMs: 5000, tls: { ca: file("ca.pem") } });
    const d = await client.evaluate(allowRequest("tls-3"));
    client.close();
    assert.equal(d.verdict, "HOLD");
    assert.equal(d.failedClosed, true);
    assert.match(d.reason, /UNAVAILABLE/);
  });

  it("fails closed against a plaintext client: no answer", async () => {
    const client = new Client(fake.target, { deadlineMs: 2000 });
    const d = await client.evaluate(allowRequest("tls-4"));
    client.close();
    assert.equal(d.failedClosed, true);
  });

  it("rejects unreadable files and a cert without its key, saying which", () => {
    assert.throws(() => new Client(fake.target, { tls: { ca: file("missing.pem") } }), (e) => {
      assert.ok(e instanceof AgateError);
      assert.match(e.details, /^tls\.ca: cannot read .*missing\.pem: ENOENT/);
      return true;
    });
    assert.throws(() => new Client(fake.target, { tls: { cert: file("client.pem") } }), {
      details: "tls: cert and key go together (mutual TLS needs both)",
    });
  });
});
