// The support desk the example agent works at: three tools, how agate sees each of them, and a
// scripted model turn by turn (look the order up, refund it, tell the customer).

import { AIMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import type { EvaluateInput } from "@agate/client";
import { ScriptedChatModel } from "./scripted_model.js";

/** What the desk's tools executed, in order (the example's stand-in for side effects). */
export type Ledger = { tool: string; args: Record<string, unknown> }[];

/** supportTools are the desk's tools; each appends what it did to `ledger`. */
export function supportTools(ledger: Ledger) {
  return [
    tool(
      async (args) => {
        ledger.push({ tool: "lookup_order", args });
        return `order ${args.order_id}: delivered damaged, paid 400.00 USD`;
      },
      { name: "lookup_order", description: "Look an order up.", schema: z.object({ order_id: z.string() }) },
    ),
    tool(
      async (args) => {
        ledger.push({ tool: "refund", args });
        return `refunded ${args.amount} USD on ${args.order_id}`;
      },
      {
        name: "refund",
        description: "Refund an order (irreversible).",
        schema: z.object({ order_id: z.string(), amount: z.number() }),
      },
    ),
    tool(
      async (args) => {
        ledger.push({ tool: "send_reply", args });
        return `sent to ${args.ticket_id}`;
      },
      {
        name: "send_reply",
        description: "Send the customer a reply; confidence is the model's own, in [0, 1].",
        schema: z.object({ ticket_id: z.string(), text: z.string(), confidence: z.number() }),
      },
    ),
  ];
}

/** toRequest says how agate sees each tool call of the desk (tenant acme). */
export function toRequest(toolName: string, args: Record<string, unknown>): EvaluateInput {
  const base = { tenantId: "acme", agentId: "support-agent", workflowId: "support" };
  switch (toolName) {
    case "refund":
      return {
        ...base,
        itemId: String(args.order_id),
        action: { type: "refund", amount: Number(args.amount), irreversible: true },
        evidence: { proposed_action: JSON.stringify({ tool: toolName, args }) },
      };
    case "send_reply":
      return {
        ...base,
        itemId: String(args.ticket_id),
        action: { type: "send_reply", customerFacing: true },
        model: { confidence: Number(args.confidence) },
      };
    default:
      return { ...base, itemId: String(args.order_id ?? ""), action: { type: toolName } };
  }
}

/** scriptedModel plays the model: the same turns every run, whatever it is told. */
export function scriptedModel(): ScriptedChatModel {
  const call = (id: string, name: string, args: Record<string, unknown>) =>
    new AIMessage({ content: "", tool_calls: [{ id, name, args, type: "tool_call" }] });
  return new ScriptedChatModel([
    call("call-1", "lookup_order", { order_id: "order-7" }),
    call("call-2", "refund", { order_id: "order-7", amount: 400 }),
    call("call-3", "send_reply", { ticket_id: "ticket-7", text: "Your refund of 400 USD is on its way.", confidence: 0.93 }),
    new AIMessage("Refunded order-7 and told the customer."),
  ]);
}
