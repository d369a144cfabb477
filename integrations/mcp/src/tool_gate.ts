// ToolGate decides, for one tools/call, whether the proxy forwards it or answers it itself.
//
// - ALLOW (and a successful redemption): forward.
// - HOLD, BLOCK, PARK_ITEM: not forwarded; answered with an error result telling the model the
//   action awaits approval (case, owner, SLA deadline). The case is remembered per (tool,
//   canonical arguments): the next identical call reads the case — still open: the same answer;
//   approved: redeemed (Evaluate with approval.case_id and a new request_id) and forwarded if
//   agate answers ALLOW; rejected: refused once and forgotten; expired or resolved: forgotten
//   and evaluated anew.
// - DENY, SAFE_MODE: not forwarded; an error result.
// - agate does not answer (the client fails closed), refuses the request, or the arguments do not
//   fit the mapping: not forwarded; an error result saying why.
//
// Why isError is true for calls awaiting approval: the action did not happen, and everything that
// reads isError (clients that validate a tool's outputSchema only on success, agent frameworks,
// logs) must not take it as done. The text tells the model it is a pending review, not a bad
// argument, and to repeat the identical call after approval.
//
// Thread-compatible under Node's single thread; safe to share across proxy sessions.

import { AgateError, type Client, type Decision, pb } from "@agate/client";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import {
  ArgumentError,
  type Mapping,
  canonicalJson,
  ruleFor,
  toEvaluateRequest,
} from "./mapping.js";

/** What to do with one tools/call. */
export type GateOutcome =
  | { readonly forward: true; readonly decision?: Decision }
  | { readonly forward: false; readonly result: CallToolResult; readonly decision?: Decision };

/** The `_meta` key under which refusals carry agate's decision for programs (not the model). */
export const META_KEY = "agate/decision";

/** Options of a ToolGate. */
export interface ToolGateOptions {
  /** At most this many awaited cases are remembered; the oldest is forgotten first (default 10000). */
  maxRemembered?: number;
}

/** ToolGate asks agate about tools/call requests; see the file comment for the contract. */
export class ToolGate {
  private readonly awaiting = new Map<string, string>(); // (tool, canonical args) -> case id
  private readonly maxRemembered: number;

  constructor(
    private readonly client: Client,
    private readonly mapping: Mapping,
    options: ToolGateOptions = {},
  ) {
    this.maxRemembered = options.maxRemembered ?? 10_000;
  }

  /** check decides one tools/call; it never rejects (every failure is a refusal result). */
  async check(tool: string, args: Record<string, unknown> = {}): Promise<GateOutcome> {
    const rule = ruleFor(this.mapping, tool);
    if (rule === "allow") return { forward: true };
    if (rule === "deny") return refuse(`${tool} was not executed: this gate lets no unlisted tool through.`);
    if (!rule.evaluate) return { forward: true };
    const canonical = canonicalJson(args);
    const key = `${tool}\u0000${canonical}`;
    try {
      const request = toEvaluateRequest(this.mapping, tool, rule, args, canonical);
      const caseId = this.awaiting.get(key);
      if (caseId !== undefined) {
        const outcome = await this.followUp(tool, key, caseId, request);
        if (outcome) return outcome;
      }
      return this.decide(tool, key, await this.client.evaluate(request));
    } catch (e) {
      if (e instanceof ArgumentError) return refuse(`${tool} was not executed: ${e.message}.`);
      if (e instanceof AgateError) return refuse(`${tool} was not executed: agate refused the check: ${e.message}.`);
      throw e;
    }
  }

  /** awaitedCases is how many (tool, arguments) pairs wait for a case now. */
  get awaitedCases(): number {
    return this.awaiting.size;
  }

  // followUp handles a call whose identical twin awaits a case; undefined: evaluate it anew.
  private async followUp(
    tool: string,
    key: string,
    caseId: string,
    request: Record<string, unknown>,
  ): Promise<GateOutcome | undefined> {
    let state: pb.CaseState;
    let closedBy = "";
    try {
      const c = await this.client.getCase(caseId);
      state = c.state;
      const last = c.history[c.history.length - 1];
      closedBy = last ? `${last.actor}${last.comment ? `: ${last.comment}` : ""}` : "";
    } catch (e) {
      if (e instanceof AgateError && e.codeName === "NOT_FOUND") {
        this.awaiting.delete(key);
        return undefined;
      }
      if (e instanceof AgateError) {
        return refuse(`${tool} was not executed: agate did not answer about case ${caseId} (${e.codeName}); failing closed. Try again later.`);
      }
      throw e;
    }
    if (state === pb.CaseState.OPEN) {
      return refuse(
        `${tool} was not executed: it still awaits approval in agate case ${caseId}. Do not change the arguments; call ${tool} again with exactly the same arguments once the case is approved.`,
      );
    }
    if (state === pb.CaseState.REJECTED) {
      this.awaiting.delete(key);
      return refuse(`${tool} was not executed: agate case ${caseId} was rejected${closedBy ? ` by ${closedBy}` : ""}. Do not retry it.`);
    }
    if (state !== pb.CaseState.APPROVED) {
      this.awaiting.delete(key); // expired or resolved: the request is void; evaluate it anew
      return undefined;
    }
    // Redeem: the same action naming the approved case, under a new request_id.
    const d = await this.client.evaluate({ ...request, approval: { caseId } });
    if (d.failedClosed) return this.decide(tool, key, d); // still approved: the next call redeems
    this.awaiting.delete(key);
    return this.decide(tool, key, d);
  }

  private decide(tool: string, key: string, d: Decision): GateOutcome {
    if (d.verdict === "ALLOW") return { forward: true, decision: d };
    if (d.failedClosed) {
      return refuse(`${tool} was not executed: ${d.reason}. Try again later.`, d);
    }
    const who = `case ${d.caseId}, owner ${d.owner}${d.slaDeadline ? `, decision due by ${d.slaDeadline.toISOString()}` : ""}`;
    const meanwhile = d.agentAction ? ` Meanwhile: ${d.agentAction}.` : "";
    const why = d.reason ? ` (${d.reason})` : "";
    switch (d.verdict) {
      case "HOLD":
      case "BLOCK":
      case "PARK_ITEM":
        this.remember(key, d.caseId);
        return refuse(
          `${tool} was not executed: it awaits approval (agate ${d.verdict}, ${who})${why}.${meanwhile} This is a review, not a problem with the arguments: do not change them to get around it. Once the case is approved, call ${tool} again with exactly the same arguments and it will run once.`,
          d,
        );
      case "SAFE_MODE":
        return refuse(`${tool} was not executed: the workflow is in safe mode (agate SAFE_MODE, ${who})${why}.${meanwhile}`, d);
      default:
        return refuse(`${tool} was refused by agate (${d.verdict}, ${who})${why}.${meanwhile} No approval turns this into an allow.`, d);
    }
  }

  private remember(key: string, caseId: string): void {
    this.awaiting.delete(key);
    this.awaiting.set(key, caseId);
    if (this.awaiting.size > this.maxRemembered) {
      this.awaiting.delete(this.awaiting.keys().next().value as string);
    }
  }
}

function refuse(text: string, d?: Decision): GateOutcome {
  const result: CallToolResult = { content: [{ type: "text", text: `agate: ${text}` }], isError: true };
  if (d) {
    result._meta = {
      [META_KEY]: {
        verdict: d.verdict,
        caseId: d.caseId,
        owner: d.owner,
        slaDeadline: d.slaDeadline?.toISOString() ?? null,
        reason: d.reason,
        failedClosed: d.failedClosed,
      },
    };
  }
  return { forward: false, result, decision: d };
}
