// The gate over stdio in front of the toy server over stdio, against the real agate-server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client as AgateClient } from "@agate/client";
import { startAgateServer } from "@agate/client/testing";
import { caseIdIn, connectStdio, executed, recordFile, text } from "./helpers.mjs";

let agate;
let admin; // talks to agate directly, as the humans and the test do
let gate;
const record = recordFile();
const refunds = () => executed(record).filter((e) => e.tool === "refund");

before(async () => {
  agate = await startAgateServer();
  admin = new AgateClient(agate.target, { deadlineMs: 5000 });
  gate = await connectStdio({ agate: agate.target, record });
});
after(async () => {
  await gate?.close();
  admin?.close();
  await agate?.stop();
});

describe("the MCP gate over stdio", () => {
  it("passes tools/list through", async () => {
    const { tools } = await gate.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ["grant_role", "lookup_order", "refund"]);
  });

  it("forwards a call agate allows, and returns the server's result", async () => {
    const result = await gate.client.callTool({ name: "lookup_order", arguments: { order_id: "o-1" } });
    assert.equal(result.isError ?? false, false);
    assert.equal(text(result), "order o-1: shipped, 400.00 USD");
    assert.deepEqual(executed(record).at(-1), { tool: "lookup_order", arguments: { order_id: "o-1" } });
  });

  it("forwards a refund under the limit", async () => {
    const result = await gate.client.callTool({ name: "refund", arguments: { order_id: "o-small", amount: 40 } });
    assert.equal(text(result), "refunded 40 on o-small");
    assert.equal(refunds().length, 1);
  });

  it("holds a blocked refund, redeems the identical call after approval, and runs it once", async () => {
    const args = { order_id: "o-7", amount: 400, reason: "damaged" };
    const blocked = await gate.client.callTool({ name: "refund", arguments: args });
    assert.equal(blocked.isError, true);
    const caseId = caseIdIn(blocked);
    assert.match(caseId, /^case_/);
    assert.match(text(blocked), /^agate: refund was not executed: it awaits approval \(agate BLOCK, case case_\w+, owner finance-approver, decision due by \d{4}-\d\d-\d\dT/);
    assert.match(text(blocked), /call refund again with exactly the same arguments/);
    assert.equal(blocked._meta["agate/decision"].verdict, "BLOCK");
    assert.equal(refunds().length, 1, "the blocked refund never reached the server");

    const c = await admin.getCase(caseId);
    assert.equal(c.tenantId, "acme");
    assert.equal(c.itemId, "o-7");
    assert.deepEqual(JSON.parse(c.evidence.attached.proposed_action), { tool: "refund", arguments: args });

    const pending = await gate.client.callTool({ name: "refund", arguments: args });
    assert.equal(pending.isError, true);
    assert.match(text(pending), new RegExp(`still awaits approval in agate case ${caseId}`));
    assert.equal(refunds().length, 1);

    await admin.acknowledge(caseId, "approve", { approver: "finance-approver", comment: "ok" });
    // The same arguments in another order: the same call.
    const redeemed = await gate.client.callTool({ name: "refund", arguments: { reason: "damaged", amount: 400, order_id: "o-7" } });
    assert.equal(redeemed.isError ?? false, false, text(redeemed));
    assert.equal(text(redeemed), "refunded 400 on o-7");
    assert.equal(refunds().length, 2);
    assert.equal((await admin.getCase(caseId)).redeemed, true);

    const again = await gate.client.callTool({ name: "refund", arguments: args });
    assert.equal(again.isError, true, "an approval lets the action through once");
    assert.notEqual(caseIdIn(again), caseId);
    assert.equal(refunds().length, 2);
  });

  it("refuses a rejected refund once, then evaluates it anew", async () => {
    const args = { order_id: "o-8", amount: 900 };
    const blocked = await gate.client.callTool({ name: "refund", arguments: args });
    const caseId = caseIdIn(blocked);
    await admin.acknowledge(caseId, "reject", { approver: "controller", comment: "no receipt" });
    const rejected = await gate.client.callTool({ name: "refund", arguments: args });
    assert.equal(rejected.isError, true);
    assert.equal(text(rejected), `agate: refund was not executed: agate case ${caseId} was rejected by controller: no receipt. Do not retry it.`);
    const anew = await gate.client.callTool({ name: "refund", arguments: args });
    assert.equal(anew.isError, true);
    assert.match(text(anew), /awaits approval \(agate BLOCK/);
    assert.ok(!refunds().some((r) => r.arguments.order_id === "o-8"));
  });

  it("refuses a denied call with an error result and does not forward it", async () => {
    const result = await gate.client.callTool({ name: "grant_role", arguments: { user: "mallory", role: "admin" } });
    assert.equal(result.isError, true);
    assert.match(text(result), /^agate: grant_role was refused by agate \(DENY, case case_\w+, owner security-oncall/);
    assert.match(text(result), /No approval turns this into an allow/);
    assert.ok(!executed(record).some((e) => e.tool === "grant_role"));
  });

  // Last: the retry storm stays in count("retry", "10m") and keeps the workflow in safe mode.
  it("refuses calls while the workflow is in safe mode", async () => {
    const storm = await admin.evaluate({ tenantId: "acme", workflowId: "support", signals: { retry: 9 } });
    assert.equal(storm.verdict, "SAFE_MODE");
    try {
      const before = executed(record).length;
      const result = await gate.client.callTool({ name: "lookup_order", arguments: { order_id: "o-9" } });
      assert.equal(result.isError, true);
      assert.match(text(result), /^agate: lookup_order was not executed: the workflow is in safe mode \(agate SAFE_MODE/);
      assert.equal(executed(record).length, before);
    } finally {
      await admin.acknowledge(storm.caseId, "resolve", { approver: "ops-oncall" });
    }
  });
});
