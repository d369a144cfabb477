// Decision: agate's answer to one Evaluate as the SDK returns it (or the client's synthetic one when
// agate did not answer), and the short names of verdicts and case states. Immutable.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Case, CaseState, type EvaluateResponse, Verdict } from "./gen/agate/v1/agate_pb.js";

/** A verdict by its short name, as the matrix and the CLI spell it. */
export type VerdictName = "UNSPECIFIED" | "ALLOW" | "PARK_ITEM" | "HOLD" | "SAFE_MODE" | "BLOCK" | "DENY";

/** A case state by its short name. */
export type CaseStateName = "UNSPECIFIED" | "OPEN" | "APPROVED" | "REJECTED" | "RESOLVED" | "EXPIRED";

const VERDICT_NAMES: readonly VerdictName[] = [
  "UNSPECIFIED",
  "ALLOW",
  "PARK_ITEM",
  "HOLD",
  "SAFE_MODE",
  "BLOCK",
  "DENY",
];

const CASE_STATE_NAMES: readonly CaseStateName[] = [
  "UNSPECIFIED",
  "OPEN",
  "APPROVED",
  "REJECTED",
  "RESOLVED",
  "EXPIRED",
];

/** verdictName returns the short name of a wire verdict (`Verdict.BLOCK` -> "BLOCK"). */
export function verdictName(verdict: Verdict): VerdictName {
  return VERDICT_NAMES[verdict] ?? "UNSPECIFIED";
}

/** caseStateName returns the short name of a wire case state (`CaseState.APPROVED` -> "APPROVED"). */
export function caseStateName(state: CaseState): CaseStateName {
  return CASE_STATE_NAMES[state] ?? "UNSPECIFIED";
}

/**
 * The verdicts whose case a human can approve and the agent then redeem (ALLOW once):
 * HOLD, PARK_ITEM and BLOCK. DENY is final, SAFE_MODE is lifted, not redeemed.
 */
export const REDEEMABLE_VERDICTS: ReadonlySet<VerdictName> = new Set(["HOLD", "PARK_ITEM", "BLOCK"]);

/**
 * Decision is agate's answer to one Evaluate call, or the client's synthetic answer when agate did
 * not answer (`failedClosed` / `failedOpen`). Only `allowed` (verdict "ALLOW") means go ahead.
 * Immutable; do not modify `response`.
 */
export interface Decision {
  /** What the agent must do: "ALLOW" (go ahead) or a refusal ("HOLD", "BLOCK", ...). */
  readonly verdict: VerdictName;
  /** True only for ALLOW: the action may go ahead. */
  readonly allowed: boolean;
  /**
   * The request_id that was sent (generated when the request had none); evaluating the same
   * request with it again returns the same decision (agate's idempotency).
   */
  readonly requestId: string;
  /** The case opened or joined for the winning lane; "" for ALLOW and synthetic decisions. */
  readonly caseId: string;
  /** The winning lane ("" for ALLOW). */
  readonly lane: string;
  /** Who owns the case (the lane's primary owner). */
  readonly owner: string;
  /** When the owner must have answered; undefined for ALLOW and synthetic decisions. */
  readonly slaDeadline: Date | undefined;
  /** What the agent must do meanwhile, from the matrix. */
  readonly agentAction: string;
  /** Why, when the fired triggers do not say it: a failure mode, a redemption, how a case ended. */
  readonly reason: string;
  /** True when agate did not answer and this HOLD is the client's (failureMode "closed"). */
  readonly failedClosed: boolean;
  /** True when agate did not answer and this ALLOW is the client's (failureMode "open"). */
  readonly failedOpen: boolean;
  /** gate() only: it stopped waiting at its timeout (or signal); this is the original refusal. */
  readonly timedOut: boolean;
  /** gate() only: the case's last seen state ("APPROVED", "REJECTED", "EXPIRED", "RESOLVED", "OPEN"). */
  readonly caseState?: CaseStateName;
  /** gate() only: the case as last seen (state, history, current owner). */
  readonly case?: Case;
  /** gate() only, on a redemption: the refusal that opened the case. */
  readonly original?: Decision;
  /** The full response (fired triggers, missing evidence, backup, ...). */
  readonly response: EvaluateResponse;
}

/** toDecision wraps a response (from agate or synthetic) to the request `requestId` as a Decision. */
export function toDecision(response: EvaluateResponse, requestId: string): Decision {
  return {
    verdict: verdictName(response.verdict),
    allowed: response.verdict === Verdict.ALLOW,
    requestId,
    caseId: response.caseId,
    lane: response.lane,
    owner: response.owner,
    slaDeadline: response.slaDeadline ? timestampDate(response.slaDeadline) : undefined,
    agentAction: response.agentAction,
    reason: response.reason,
    failedClosed: response.failedClosed,
    failedOpen: response.failedOpen,
    timedOut: false,
    response,
  };
}

export { CaseState, Verdict };
