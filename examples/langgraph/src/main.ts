#!/usr/bin/env node
// Runs the support agent once against agate: `AGATE=127.0.0.1:7878 node dist/main.js`.
// It pauses on the refund until a person acknowledges the case, e.g. with
//   agate ack --server 127.0.0.1:7878 --case CASE --decision approve --approver finance-approver

import { HumanMessage } from "@langchain/core/messages";
import { Client } from "@agate/client";
import { buildSupportAgent, pendingApprovals, resumeWhenDecided } from "./agent.js";
import { type Ledger, scriptedModel, supportTools, toRequest } from "./support_desk.js";

const agate = new Client(process.env.AGATE ?? "127.0.0.1:7878", { deadlineMs: 1000 });
const ledger: Ledger = [];
const graph = buildSupportAgent({ agate, model: scriptedModel(), tools: supportTools(ledger), toRequest });
const config = { configurable: { thread_id: `demo-${Date.now()}` } };

await graph.invoke({ messages: [new HumanMessage("Order 7 arrived broken, I want my 400 USD back.")] }, config);
for (const waiting of await pendingApprovals(graph, config)) {
  console.log(`paused: ${waiting.tool} ${JSON.stringify(waiting.args)} -> ${waiting.verdict}, case ${waiting.caseId}, owner ${waiting.owner}, due ${waiting.slaDeadline}`);
}
const final = await resumeWhenDecided(graph, agate, config);
if (!final) {
  console.log("no decision in time: the thread stays paused and nothing ran");
} else {
  for (const m of final.messages) {
    const calls = "tool_calls" in m && Array.isArray(m.tool_calls) ? m.tool_calls : [];
    const said = calls.length ? calls.map((c) => `${c.name}(${JSON.stringify(c.args)})`).join(", ") : String(m.content);
    console.log(`${m.getType()}: ${said}`);
  }
}
console.log(`executed: ${JSON.stringify(ledger)}`);
agate.close();
