// gate(): wait for a human on the real agate-server, redeem an approval once, fail closed otherwise.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Client, create, pb } from "../dist/index.js";
import { startAgateServer } from "../dist/testing.js";
import { allowRequest, approve, blockRequest, freePort, startFake } from "./helpers.mjs";

// No test here may depend on timing: waits are generous and only bound a hang (test timeout).
const HANG = { timeout: 120_000 };
const LONG = 90_000;

let server;
let client;
before(async () => {
  server = await startAgateServer();
  client = new Client(server.target, { deadlineMs: 5000 });
});
after(async () => {
  client.close();
  await server.stop();
});

describe("gate", () => {
  it("returns ALLOW at once", HANG, async () => {
    const d = await client.gate(allowRequest("g-allow"), { timeoutMs: LONG });
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.timedOut, false);
  });

  for (const [verdict, request] of [
    ["DENY", { tenant_id: "acme", actor: { credential_id: "cred-g" }, action: { type: "grant", requested_scopes: ["admin"] } }],
    ["SAFE_MODE", { tenant_id: "acme", workflow_id: "w-gate", signals: { retry: 5 } }],
  ]) {
    it(`returns ${verdict} at once: there is nothing to redeem`, HANG, async () => {
      const d = await client.gate(request, { timeoutMs: 10 * LONG });
      assert.equal(d.verdict, verdict);
      assert.equal(d.timedOut, false);
      assert.equal(d.caseState, undefined);
    });
  }

  it("waits for an approval given while it waits, then redeems it: ALLOW once", HANG, async () => {
    const request = blockRequest("g-approve", "order-g1");
    const gated = client.gate(request, { timeoutMs: LONG });
    const { caseId } = await client.evaluate(request); // the same request_id: the same case
    await sleep(200);
    await approve(client, caseId);
    const d = await gated;
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.caseId, caseId);
    assert.match(d.reason, /approved by finance-approver in case .*; redeemed once/);
    assert.equal(d.timedOut, false);
    assert.equal(d.requestId, "g-approve:redeem");
    assert.equal(d.caseState, "APPROVED");
    assert.equal(d.original.verdict, "BLOCK");
    assert.equal(d.original.caseId, caseId);
    assert.equal((await client.getCase(caseId)).redeemed, true);
    // A retried gate (the same request_id) resumes: the redemption is replayed, not spent twice.
    const retried = await client.gate(request, { timeoutMs: LONG });
    assert.equal(retried.verdict, "ALLOW");
    assert.equal(retried.response.replayed, true);
    assert.equal(retried.response.decisionId, d.response.decisionId);
    // Once: naming the case again in a new request is evaluated normally.
    const again = await client.evaluate({ ...blockRequest("g-approve-2", "order-g1"), approval: { case_id: caseId } });
    assert.equal(again.verdict, "BLOCK");
    assert.match(again.reason, /already redeemed/);
  });

  it("catches an approval given before it subscribed (GetCase after WatchCases)", HANG, async () => {
    const request = blockRequest("g-early", "order-g2");
    const first = await client.evaluate(request);
    await approve(client, first.caseId);
    const d = await client.gate(request, { timeoutMs: LONG });
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.caseId, first.caseId);
  });

  it("returns the refusal when the case is rejected", HANG, async () => {
    const request = blockRequest("g-reject", "order-g3");
    const gated = client.gate(request, { timeoutMs: LONG });
    const { caseId } = await client.evaluate(request);
    await client.acknowledge(caseId, "reject", { approver: "controller", comment: "no receipt" });
    const d = await gated;
    assert.equal(d.verdict, "BLOCK");
    assert.equal(d.caseId, caseId);
    assert.equal(d.caseState, "REJECTED");
    assert.equal(d.reason, `case ${caseId} was rejected by controller: no receipt`);
    assert.equal(d.timedOut, false);
  });

  it("times out into the original refusal (fail closed)", HANG, async () => {
    const d = await client.gate(blockRequest("g-timeout", "order-g4"), { timeoutMs: 500 });
    assert.equal(d.verdict, "BLOCK");
    assert.equal(d.timedOut, true);
    assert.equal(d.caseState, "OPEN");
    assert.equal(d.case.id, d.caseId);
    assert.equal((await client.getCase(d.caseId)).state, pb.CaseState.OPEN);
  });

  it("stops waiting when its signal aborts, as on a timeout", HANG, async () => {
    const controller = new AbortController();
    const gated = client.gate(blockRequest("g-abort", "order-g5"), { timeoutMs: LONG, signal: controller.signal });
    await sleep(100);
    controller.abort();
    const d = await gated;
    assert.equal(d.verdict, "BLOCK");
    assert.equal(d.timedOut, true);
  });

  it("returns a synthetic HOLD at once when agate is down", HANG, async () => {
    const down = new Client(`127.0.0.1:${await freePort()}`, { deadlineMs: 2000 });
    const d = await down.gate(blockRequest("g-down"), { timeoutMs: 10 * LONG });
    down.close();
    assert.equal(d.verdict, "HOLD");
    assert.equal(d.failedClosed, true);
    assert.equal(d.timedOut, false);
  });
});

describe("gate against a fake agate", () => {
  const caseOf = (state) => create(pb.CaseSchema, { id: "case_1", state, tenantId: "acme" });
  const evaluate = (order) => (call, callback) => {
    order.push(call.request.approval ? `redeem:${call.request.approval.caseId}` : "evaluate");
    const verdict = call.request.approval ? pb.Verdict.ALLOW : pb.Verdict.BLOCK;
    callback(null, create(pb.EvaluateResponseSchema, { verdict, caseId: "case_1" }));
  };

  it("subscribes with the tenant filter before reading the case, learns the approval from the stream, then cancels it", HANG, async () => {
    const order = [];
    let watch;
    const fake = await startFake({
      evaluate: evaluate(order),
      watchCases: (call) => {
        order.push(`watch:${call.request.tenantId}`);
        watch = call;
        call.on("cancelled", () => order.push("cancelled"));
      },
      getCase: (call, callback) => {
        order.push("getCase");
        callback(null, create(pb.GetCaseResponseSchema, { case: caseOf(pb.CaseState.OPEN) })); // only the stream tells
      },
    });
    const c = new Client(fake.target, { deadlineMs: 5000 });
    try {
      const gated = c.gate({ ...blockRequest("fake-1"), signals: { retry: 1 } }, { timeoutMs: LONG });
      while (!order.includes("getCase")) await sleep(20);
      watch.write(create(pb.CaseEventSchema, { sequence: 1n, case: create(pb.CaseSchema, { id: "other", state: pb.CaseState.APPROVED }) }));
      watch.write(create(pb.CaseEventSchema, { sequence: 2n, case: caseOf(pb.CaseState.APPROVED) }));
      const d = await gated;
      assert.equal(d.verdict, "ALLOW");
      assert.equal(d.requestId, "fake-1:redeem");
      while (!order.includes("cancelled")) await sleep(20);
      const at = (step) => order.indexOf(step);
      assert.equal(at("evaluate"), 0);
      assert.ok(at("watch:acme") < at("getCase"), order.join());
      assert.ok(at("getCase") < at("redeem:case_1"), order.join());
      assert.ok(at("cancelled") > at("getCase"), order.join()); // before or after the redemption
      assert.equal(order.filter((s) => s.startsWith("watch")).length, 1);
    } finally {
      c.close();
      await fake.forceStop();
    }
  });

  it("subscribes again when the stream ends, and reads the case again later", HANG, async () => {
    const order = [];
    let reads = 0;
    const fake = await startFake({
      evaluate: evaluate(order),
      watchCases: (call) => {
        order.push("watch");
        call.end(); // a stream that ends at once
      },
      getCase: (call, callback) => {
        reads++;
        const state = reads === 1 ? pb.CaseState.OPEN : pb.CaseState.APPROVED;
        callback(null, create(pb.GetCaseResponseSchema, { case: caseOf(state) }));
      },
    });
    const c = new Client(fake.target, { deadlineMs: 5000 });
    try {
      const d = await c.gate(blockRequest("fake-2"), { timeoutMs: LONG });
      assert.equal(d.verdict, "ALLOW");
      assert.ok(reads >= 2);
      assert.ok(order.filter((s) => s === "watch").length >= 2, order.join());
    } finally {
      c.close();
      await fake.forceStop();
    }
  });

  it("returns the refusal with a reason when agate no longer knows the case", HANG, async () => {
    const fake = await startFake({
      evaluate: evaluate([]),
      watchCases: () => {},
      getCase: (call, callback) => callback({ code: grpc.status.NOT_FOUND, details: "case case_1: not found" }),
    });
    const c = new Client(fake.target, { deadlineMs: 5000 });
    try {
      const d = await c.gate(blockRequest("fake-3"), { timeoutMs: LONG });
      assert.equal(d.verdict, "BLOCK");
      assert.equal(
        d.reason,
        "case case_1 is unknown to agate now (case case_1: not found); resubmit the request with a new request_id",
      );
    } finally {
      c.close();
      await fake.forceStop();
    }
  });

  it("rejects when agate refuses to show the case", HANG, async () => {
    const fake = await startFake({
      evaluate: evaluate([]),
      watchCases: () => {},
      getCase: (call, callback) => callback({ code: grpc.status.PERMISSION_DENIED, details: "agents may not read cases" }),
    });
    const c = new Client(fake.target, { deadlineMs: 5000 });
    try {
      await assert.rejects(c.gate(blockRequest("fake-4"), { timeoutMs: LONG }), {
        name: "AgateError",
        codeName: "PERMISSION_DENIED",
        details: "agents may not read cases",
      });
    } finally {
      c.close();
      await fake.forceStop();
    }
  });
});
