// The LangGraph support agent against the real agate-server, with the scripted model (offline).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { Client } from "@agate/client";
import { startAgateServer } from "@agate/client/testing";
import { buildSupportAgent, pendingApprovals, resumeWhenDecided } from "../dist/agent.js";
import { ScriptedChatModel } from "../dist/scripted_model.js";
import { scriptedModel, supportTools, toRequest } from "../dist/support_desk.js";

let server;
let agate;
before(async () => {
  server = await startAgateServer();
  agate = new Client(server.target, { deadlineMs: 5000 }); // generous: a busy shared machine
});
after(async () => {
  agate.close();
  await server.stop();
});

function agent(model = scriptedModel()) {
  const ledger = [];
  const graph = buildSupportAgent({ agate, model, tools: supportTools(ledger), toRequest });
  return { graph, ledger };
}

const ask = (graph, thread) =>
  graph.invoke({ messages: [new HumanMessage("Order 7 arrived broken, I want my 400 USD back.")] }, { configurable: { thread_id: thread } });

const toolResults = (state) => state.messages.filter((m) => m.getType() === "tool").map((m) => String(m.content));

describe("the support agent", () => {
  it("pauses on the blocked refund, resumes once it is approved, and redeems it: ALLOW once", async () => {
    const { graph, ledger } = agent();
    const config = { configurable: { thread_id: "t-approve" } };
    await ask(graph, "t-approve");
    const [waiting, ...more] = await pendingApprovals(graph, config);
    assert.equal(more.length, 0);
    assert.equal(waiting.tool, "refund");
    assert.equal(waiting.verdict, "BLOCK");
    assert.equal(waiting.owner, "finance-approver");
    assert.match(waiting.caseId, /^case_/);
    assert.deepEqual(ledger.map((e) => e.tool), ["lookup_order"], "the refund did not run");

    await agate.acknowledge(waiting.caseId, "approve", { approver: "finance-approver", comment: "receipt checked" });
    const final = await resumeWhenDecided(graph, agate, config, 90_000);
    assert.ok(final, "the graph finished");
    assert.deepEqual(ledger.map((e) => e.tool), ["lookup_order", "refund", "send_reply"], "each tool ran once");
    assert.deepEqual(toolResults(final), [
      "order order-7: delivered damaged, paid 400.00 USD",
      "refunded 400 USD on order-7",
      "sent to ticket-7",
    ]);
    assert.equal(final.messages.at(-1).content, "Refunded order-7 and told the customer.");
    const c = await agate.getCase(waiting.caseId);
    assert.equal(c.redeemed, true);
    assert.deepEqual(c.requestIds, ["t-approve:call-2"], "the node ran again on resume, and its evaluation was replayed");
  });

  it("tells the model the refund was not executed when the case is rejected", async () => {
    const { graph, ledger } = agent();
    const config = { configurable: { thread_id: "t-reject" } };
    await ask(graph, "t-reject");
    const [waiting] = await pendingApprovals(graph, config);
    await agate.acknowledge(waiting.caseId, "reject", { approver: "controller", comment: "no receipt" });
    const final = await resumeWhenDecided(graph, agate, config, 90_000);
    assert.ok(!ledger.some((e) => e.tool === "refund"));
    assert.equal(
      toolResults(final)[1],
      `refund was not executed: agate BLOCK (case ${waiting.caseId}, owner finance-approver): case ${waiting.caseId} ended REJECTED`,
    );
  });

  it("holds an unsure customer reply for support, then sends it once approved", async () => {
    const model = new ScriptedChatModel([
      new AIMessage({
        content: "",
        tool_calls: [{ id: "c1", name: "send_reply", args: { ticket_id: "ticket-9", text: "Maybe?", confidence: 0.4 }, type: "tool_call" }],
      }),
      new AIMessage("Done."),
    ]);
    const { graph, ledger } = agent(model);
    const config = { configurable: { thread_id: "t-hold" } };
    await graph.invoke({ messages: [new HumanMessage("Where is my parcel?")] }, config);
    const [waiting] = await pendingApprovals(graph, config);
    assert.equal(waiting.verdict, "HOLD");
    assert.equal(waiting.owner, "support-lead");
    assert.equal(ledger.length, 0);
    await agate.acknowledge(waiting.caseId, "approve", { approver: "support-lead" });
    await resumeWhenDecided(graph, agate, config, 90_000);
    assert.deepEqual(ledger, [{ tool: "send_reply", args: { ticket_id: "ticket-9", text: "Maybe?", confidence: 0.4 } }]);
  });

  it("stays paused, with nothing run, when nobody decides in time (fail closed)", async () => {
    const { graph, ledger } = agent();
    const config = { configurable: { thread_id: "t-timeout" } };
    await ask(graph, "t-timeout");
    assert.equal(await resumeWhenDecided(graph, agate, config, 500), undefined);
    assert.equal((await pendingApprovals(graph, config)).length, 1);
    assert.deepEqual(ledger.map((e) => e.tool), ["lookup_order"]);
  });
});
