// The case calls against the real agate-server: getCase, acknowledge, listCases, stats, watchCases.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { AgateError, Client, pb } from "../dist/index.js";
import { startAgateServer } from "../dist/testing.js";
import { approve, blockRequest } from "./helpers.mjs";

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

describe("case calls", () => {
  it("getCase and acknowledge: only the lane's owner may approve, once", async () => {
    const { caseId } = await client.evaluate(blockRequest("c-1", "order-c1"));
    const c = await client.getCase(caseId);
    assert.equal(c.state, pb.CaseState.OPEN);
    assert.equal(c.owner, "finance-approver");
    await assert.rejects(client.acknowledge(caseId, "approve", { approver: "support-lead" }), (e) => {
      assert.ok(e instanceof AgateError);
      assert.equal(e.codeName, "PERMISSION_DENIED");
      assert.match(e.details, /only finance-approver, controller may/);
      assert.match(e.message, /act as one the lane or tenant allows/);
      return true;
    });
    const approved = await approve(client, caseId, "ok");
    assert.equal(approved.state, pb.CaseState.APPROVED);
    assert.equal(approved.history.at(-1).actor, "finance-approver");
    await assert.rejects(approve(client, caseId), { codeName: "FAILED_PRECONDITION" });
    await assert.rejects(client.getCase("case_nope"), { codeName: "NOT_FOUND" });
    await assert.rejects(client.acknowledge(caseId, "maybe"), {
      details: 'decision: must be "approve", "reject" or "resolve", got "maybe"',
    });
  });

  it("listCases filters by tenant and state", async () => {
    const { caseId } = await client.evaluate({ ...blockRequest("c-2", "order-c2"), tenant_id: "globex" });
    const page = await client.listCases({ tenantId: "globex", state: "CASE_STATE_OPEN" });
    assert.deepEqual(page.cases.map((c) => c.id), [caseId]);
    assert.equal((await client.listCases({ tenantId: "initech" })).cases.length, 0);
    await assert.rejects(client.listCases({ tenant: "globex" }), (e) => {
      assert.equal(e.codeName, "INVALID_ARGUMENT");
      assert.match(e.message, /^cannot encode the list cases filter \(INVALID_ARGUMENT: .*"tenant" is unknown/);
      return true;
    });
  });

  it("stats counts what each trigger fired", async () => {
    const stats = await client.stats();
    const refunds = stats.triggers.find((t) => t.triggerId === "refund-over-limit");
    assert.ok(refunds.fired >= 2n);
    assert.equal(stats.matrixVersion, "1");
  });

  it("watchCases yields transitions from now on, and stops when the caller breaks", async () => {
    const events = client.watchCases({ tenantId: "watched" });
    const first = events.next();
    // The subscription gives no signal when it is in place: open cases until one is seen.
    let n = 0;
    let seen;
    while (!seen) {
      await client.evaluate({ ...blockRequest(`w-${n}`, `order-w${n}`), tenant_id: "watched" });
      n++;
      seen = await Promise.race([first, sleep(200).then(() => undefined)]);
    }
    assert.equal(seen.done, false);
    assert.equal(seen.value.case.tenantId, "watched");
    assert.equal(seen.value.transition.event, "opened");
    await events.return(); // cancels the stream
    assert.deepEqual(await events.next(), { done: true, value: undefined });
  });
});
