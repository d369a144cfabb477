// A support agent on LangGraph.js whose tool node asks agate before every tool call.
//
//   START -> agent (the chat model) -> tools (gated) -> agent -> ... -> END
//
// The tool node first evaluates every tool call of the model's turn. A call agate answers HOLD,
// PARK_ITEM or BLOCK pauses the graph with interrupt({caseId, owner, ...}); whoever runs the graph
// waits for a person to acknowledge the case (resumeWhenDecided below does it with
// Client.waitForCase) and resumes it with Command({ resume: { state } }). On "APPROVED" the node
// redeems the approval — the same action with approval.case_id — and runs the tool if agate
// answers ALLOW (once). Only then does it run the allowed tools.
//
// LangGraph runs a resumed node again from its start, so everything before a tool runs must be
// repeatable: each call's request_id is derived from the thread and the tool call id, and agate's
// idempotency replays the same decision (and the same redemption) instead of opening a new case.
// No tool runs before the node's last interrupt, so none runs twice.

import { AIMessage, type BaseMessage, ToolMessage } from "@langchain/core/messages";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { StructuredToolInterface } from "@langchain/core/tools";
import {
  Command,
  END,
  type LangGraphRunnableConfig,
  MessagesAnnotation,
  MemorySaver,
  START,
  StateGraph,
  interrupt,
} from "@langchain/langgraph";
import {
  type CaseStateName,
  type Client,
  type Decision,
  type EvaluateInput,
  REDEEMABLE_VERDICTS,
  caseStateName,
  pb,
} from "@agate/client";

/** Turns one tool call into what agate evaluates (without request_id: the node sets it). */
export type ToActionRequest = (tool: string, args: Record<string, unknown>) => EvaluateInput;

/** What the graph shows while it waits for a person (the interrupt's value). */
export interface AwaitingApproval {
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly verdict: string;
  readonly caseId: string;
  readonly owner: string;
  readonly slaDeadline: string | null;
  readonly agentAction: string;
}

/** What the graph is resumed with: how the case ended ("APPROVED" lets the node redeem it). */
export interface CaseOutcome {
  readonly state: CaseStateName;
}

export interface SupportAgentOptions {
  readonly agate: Client;
  readonly model: BaseChatModel;
  readonly tools: readonly StructuredToolInterface[];
  readonly toRequest: ToActionRequest;
  /** Where paused threads are kept (default: in memory). */
  readonly checkpointer?: MemorySaver;
}

/** buildSupportAgent compiles the graph; call it with a `configurable.thread_id`. */
export function buildSupportAgent(options: SupportAgentOptions) {
  const { agate, toRequest } = options;
  const model = options.model.bindTools?.([...options.tools]) ?? options.model;
  const tools = new Map(options.tools.map((t) => [t.name, t]));

  const callModel = async (state: typeof MessagesAnnotation.State) => ({
    messages: [await model.invoke(state.messages)],
  });

  const gatedTools = async (state: typeof MessagesAnnotation.State, config: LangGraphRunnableConfig) => {
    const thread = String(config.configurable?.thread_id ?? "");
    const calls = (state.messages[state.messages.length - 1] as AIMessage).tool_calls ?? [];
    // 1. Decide every call (repeatable: the same request_id replays the same decision).
    const decided: { call: (typeof calls)[number]; decision: Decision }[] = [];
    for (const call of calls) {
      const request = { ...(toRequest(call.name, call.args) as object), requestId: `${thread}:${call.id}` } as EvaluateInput;
      let decision = await agate.evaluate(request);
      if (REDEEMABLE_VERDICTS.has(decision.verdict) && decision.caseId && !decision.failedClosed) {
        const outcome = interrupt<AwaitingApproval, CaseOutcome>({
          tool: call.name,
          args: call.args,
          verdict: decision.verdict,
          caseId: decision.caseId,
          owner: decision.owner,
          slaDeadline: decision.slaDeadline?.toISOString() ?? null,
          agentAction: decision.agentAction,
        });
        if (outcome.state === "APPROVED") {
          decision = await agate.evaluate({
            ...(request as object),
            requestId: `${thread}:${call.id}:redeem`,
            approval: { caseId: decision.caseId },
          } as EvaluateInput);
        } else {
          decision = { ...decision, reason: `case ${decision.caseId} ended ${outcome.state}` };
        }
      }
      decided.push({ call, decision });
    }
    // 2. Run what agate allowed; tell the model about the rest.
    const messages: BaseMessage[] = [];
    for (const { call, decision: d } of decided) {
      const tool = tools.get(call.name);
      if (d.allowed && tool) {
        messages.push(new ToolMessage({ content: String(await tool.invoke(call.args)), tool_call_id: call.id ?? "", name: call.name }));
        continue;
      }
      const why = d.failedClosed
        ? d.reason
        : `agate ${d.verdict}${d.caseId ? ` (case ${d.caseId}, owner ${d.owner})` : ""}${d.reason ? `: ${d.reason}` : ""}`;
      messages.push(
        new ToolMessage({
          content: tool ? `${call.name} was not executed: ${why}` : `unknown tool ${call.name}`,
          tool_call_id: call.id ?? "",
          name: call.name,
          status: "error",
        }),
      );
    }
    return { messages };
  };

  const route = (state: typeof MessagesAnnotation.State) => {
    const last = state.messages[state.messages.length - 1] as AIMessage;
    return last.tool_calls?.length ? "tools" : END;
  };

  return new StateGraph(MessagesAnnotation)
    .addNode("agent", callModel)
    .addNode("tools", gatedTools)
    .addEdge(START, "agent")
    .addConditionalEdges("agent", route, ["tools", END])
    .addEdge("tools", "agent")
    .compile({ checkpointer: options.checkpointer ?? new MemorySaver() });
}

/** The compiled support agent. */
export type SupportAgent = ReturnType<typeof buildSupportAgent>;

/** pendingApprovals lists what a paused thread waits for (empty when it is not paused). */
export async function pendingApprovals(graph: SupportAgent, config: RunnableConfig): Promise<AwaitingApproval[]> {
  const snapshot = await graph.getState(config);
  return snapshot.tasks.flatMap((t) => t.interrupts.map((i) => i.value as AwaitingApproval));
}

/**
 * resumeWhenDecided waits (up to timeoutMs per case) until a person acknowledged the case the
 * thread waits for, resumes the graph with how it ended, and repeats while the graph pauses again.
 * Resolves to the graph's final state, or — when a case is still open at its timeout — to
 * undefined with the thread left paused (fail closed: nothing ran).
 */
export async function resumeWhenDecided(
  graph: SupportAgent,
  agate: Client,
  config: RunnableConfig,
  timeoutMs = 300_000,
): Promise<typeof MessagesAnnotation.State | undefined> {
  for (;;) {
    const [waiting] = await pendingApprovals(graph, config);
    if (!waiting) return (await graph.getState(config)).values as typeof MessagesAnnotation.State;
    const seen = await agate.waitForCase(waiting.caseId, { timeoutMs });
    if (!seen || seen.state === pb.CaseState.OPEN) return undefined;
    const resume: CaseOutcome = { state: caseStateName(seen.state) };
    await graph.invoke(new Command({ resume }), config);
  }
}
