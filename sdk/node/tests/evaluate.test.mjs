// evaluate against the real agate-server: every verdict, refusals, idempotency, failing closed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readdirSync, readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { AgateError, Client, create, pb, toJson } from "../dist/index.js";
import { startAgateServer } from "../dist/testing.js";
import { allowRequest, blockRequest, freePort } from "./helpers.mjs";

let server;
let client;
before(async () => {
  server = await startAgateServer();
  client = new Client(server.target, { deadlineMs: 5000 }); // generous: a busy shared machine
});
after(async () => {
  client.close();
  await server.stop();
});

describe("evaluate", () => {
  it("allows a confident customer-facing reply", async () => {
    const d = await client.evaluate(allowRequest("allow-1"));
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.caseId, "");
    assert.equal(d.owner, "");
    assert.equal(d.slaDeadline, undefined);
    assert.equal(d.failedClosed, false);
    assert.equal(d.failedOpen, false);
    assert.equal(d.timedOut, false);
    assert.equal(d.response.verdict, pb.Verdict.ALLOW);
  });

  it("blocks a $400 refund and opens a case owned by finance", async () => {
    const before = Date.now();
    const d = await client.evaluate(blockRequest("block-1"));
    assert.equal(d.verdict, "BLOCK");
    assert.equal(d.lane, "financial");
    assert.match(d.caseId, /^case_/);
    assert.equal(d.owner, "finance-approver");
    assert.equal(d.response.backup, "controller");
    assert.ok(d.slaDeadline instanceof Date);
    assert.ok(d.slaDeadline.getTime() > before + 3 * 3600_000, `4h SLA, got ${d.slaDeadline.toISOString()}`);
    assert.match(d.agentAction, /block execution pending sign-off/);
    assert.deepEqual(
      d.response.fired.map((f) => f.triggerId),
      ["refund-over-limit"],
    );
    assert.equal(toJson(pb.EvaluateResponseSchema, d.response).verdict, "VERDICT_BLOCK");
  });

  const refusals = [
    {
      verdict: "HOLD",
      owner: "support-lead",
      request: { tenant_id: "acme", item_id: "t-1", action: { type: "send_reply", customer_facing: true }, model: { confidence: 0.5 } },
    },
    {
      verdict: "PARK_ITEM",
      owner: "workflow-owner",
      request: { tenant_id: "acme", item_id: "t-2", action: { type: "discount" }, attributes: { discount_pct: 35 } },
    },
    { verdict: "SAFE_MODE", owner: "ops-oncall", request: { tenant_id: "acme", workflow_id: "w-1", signals: { retry: 4 } } },
    {
      verdict: "DENY",
      owner: "security-oncall",
      request: { tenant_id: "acme", actor: { credential_id: "cred-1" }, action: { type: "grant", requested_scopes: ["admin"] } },
    },
  ];
  for (const { verdict, owner, request } of refusals) {
    it(`answers ${verdict} with its lane's owner and a case`, async () => {
      const d = await client.evaluate(request);
      assert.equal(d.verdict, verdict);
      assert.equal(d.owner, owner);
      assert.match(d.caseId, /^case_/);
      assert.equal(d.failedClosed, false);
    });
  }

  it("generates a request_id when the request has none, and leaves the caller's object alone", async () => {
    const request = { tenantId: "acme", action: { type: "send_reply", customerFacing: true }, model: { confidence: 0.9 } };
    const snapshot = structuredClone(request);
    const a = await client.evaluate(request);
    const b = await client.evaluate(request);
    assert.equal(a.verdict, "ALLOW");
    assert.notEqual(a.response.decisionId, b.response.decisionId);
    assert.equal(b.response.replayed, false);
    assert.deepEqual(request, snapshot);
  });

  it("replays the same decision for the same request_id (agate's idempotency)", async () => {
    const first = await client.evaluate(blockRequest("idem-1", "order-idem"));
    const again = await client.evaluate(blockRequest("idem-1", "order-idem"));
    assert.equal(again.caseId, first.caseId);
    assert.equal(again.response.decisionId, first.response.decisionId);
    assert.equal(again.response.replayed, true);
  });

  it("accepts a generated message, lowerCamelCase JSON and snake_case JSON alike", async () => {
    const message = create(pb.EvaluateRequestSchema, {
      requestId: "forms-1",
      tenantId: "acme",
      action: { type: "send_reply", customerFacing: true },
      model: { confidence: 0.93 },
    });
    assert.equal((await client.evaluate(message)).verdict, "ALLOW");
    const camel = { requestId: "forms-2", tenantId: "acme", action: { type: "refund", amount: 400 } };
    assert.equal((await client.evaluate(camel)).verdict, "BLOCK");
    assert.equal((await client.evaluate(blockRequest("forms-3", "order-forms"))).verdict, "BLOCK");
  });

  it("rejects INVALID_ARGUMENT naming the field", async () => {
    const bad = { request_id: "bad-1", tenant_id: "acme", model: { confidence: 1.5 } };
    await assert.rejects(client.evaluate(bad), (e) => {
      assert.ok(e instanceof AgateError);
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(e.details, "model.confidence: must be in [0, 1], got 1.5");
      assert.match(e.message, /fix the named field/);
      return true;
    });
    await assert.rejects(client.evaluate({ request_id: "bad-2", action: { type: "x" } }), {
      name: "AgateError",
      codeName: "INVALID_ARGUMENT",
      details: "tenant_id: required",
    });
  });

  it("rejects a request it cannot encode before sending it, naming the key", async () => {
    await assert.rejects(client.evaluate({ tenant_id: "acme", bogus: 1 }), (e) => {
      assert.ok(e instanceof AgateError);
      assert.equal(e.codeName, "INVALID_ARGUMENT");
      assert.match(e.message, /^cannot encode the request \(INVALID_ARGUMENT: .*"bogus" is unknown\)/);
      return true;
    });
  });

  it("rejects ALREADY_EXISTS for a request_id reused with other contents", async () => {
    await client.evaluate(allowRequest("reuse-1"));
    await assert.rejects(client.evaluate({ ...allowRequest("reuse-1"), item_id: "other" }), (e) => {
      assert.equal(e.codeName, "ALREADY_EXISTS");
      assert.match(e.details, /^request_id: reuse-1 of tenant acme was already decided/);
      assert.match(e.message, /use a fresh request_id/);
      return true;
    });
  });

  it("counts answers, escalations and errors", async () => {
    const c = new Client(server.target, { deadlineMs: 5000 });
    await c.evaluate(allowRequest("count-1"));
    await c.evaluate(blockRequest("count-2", "order-count"));
    await assert.rejects(c.evaluate({ request_id: "count-3", tenant_id: "acme", model: { confidence: 2 } }));
    assert.deepEqual(c.counters(), { ok: 2, escalated: 1, error: 1, failedClosed: 0, failedOpen: 0 });
    c.close();
  });
});

describe("when agate does not answer", () => {
  it("fails closed when nothing listens: HOLD, failedClosed, UNAVAILABLE in the reason", async () => {
    const c = new Client(`127.0.0.1:${await freePort()}`, { deadlineMs: 2000 });
    const d = await c.evaluate(allowRequest("down-1"));
    assert.equal(d.verdict, "HOLD");
    assert.equal(d.failedClosed, true);
    assert.equal(d.failedOpen, false);
    assert.equal(d.caseId, "");
    assert.match(d.reason, /^agate did not answer \(UNAVAILABLE: .*\); failing closed$/);
    assert.deepEqual(c.counters(), { ok: 0, escalated: 0, error: 0, failedClosed: 1, failedOpen: 0 });
    c.close();
  });

  it("fails open when configured to: ALLOW, failedOpen", async () => {
    const c = new Client(`127.0.0.1:${await freePort()}`, { deadlineMs: 2000, failureMode: "open" });
    const d = await c.evaluate(allowRequest("down-2"));
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.failedOpen, true);
    assert.equal(d.failedClosed, false);
    assert.match(d.reason, /\(UNAVAILABLE: .*\); failing open$/);
    assert.deepEqual(c.counters(), { ok: 0, escalated: 0, error: 0, failedClosed: 0, failedOpen: 1 });
    c.close();
  });

  it("fails closed with DEADLINE_EXCEEDED when the server is stopped (SIGSTOP)", async () => {
    const stopped = await startAgateServer();
    const c = new Client(stopped.target, { deadlineMs: 500 });
    try {
      // Connected first (a busy machine may need more than one 500 ms try).
      for (let i = 0; (await c.evaluate(allowRequest(`stop-warm-${i}`))).verdict !== "ALLOW"; i++);
      stopped.process.kill("SIGSTOP");
      // kill() returns before every thread has stopped (each stops when it next runs): on a
      // busy machine a thread could still answer. Wait until all of them are stopped.
      await waitStopped(stopped.process.pid);
      const d = await c.evaluate(allowRequest("stop-2"));
      assert.equal(d.verdict, "HOLD");
      assert.equal(d.failedClosed, true);
      assert.match(d.reason, /^agate did not answer \(DEADLINE_EXCEEDED: .*\); failing closed$/);
    } finally {
      c.close();
      await stopped.stop();
    }
  });
});

// waitStopped waits (up to 5 s) until every thread of process pid is stopped ('T' in
// /proc/PID/task/TID/stat).
async function waitStopped(pid) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const tasks = readdirSync(`/proc/${pid}/task`);
    const stopped = tasks.every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
    });
    if (stopped) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("new Client", () => {
  it("rejects bad options with what to fix", () => {
    assert.throws(() => new Client(""), { name: "AgateError", codeName: "INVALID_ARGUMENT", details: "target: required" });
    assert.throws(() => new Client("127.0.0.1:1", { deadlineMs: 0 }), {
      details: "deadlineMs: must be a positive number of milliseconds, got 0",
    });
    assert.throws(() => new Client("127.0.0.1:1", { failureMode: "maybe" }), {
      details: 'failureMode: must be "closed" or "open", got "maybe"',
    });
  });
});
