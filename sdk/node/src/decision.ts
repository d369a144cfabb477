import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CaseState, type EvaluateResponse, Verdict } from "./gen/agate/v1/agate_pb.js";

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
 * not answer (`failedClosed` / `failedOpen`). Only `verdict === "ALLOW"` means go ahead.
 */
export interface Decision {
  /** What the agent must do: "ALLOW" (go ahead) or a refusal ("HOLD", "BLOCK", ...). */
  readonly verdict: VerdictName;
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
  /** Why, when that is not plain from the fired triggers (a refused redemption, failing closed, ...). */
  readonly reason: string;
  /** True when agate did not answer and this HOLD is the client's (failureMode "closed"). */
  readonly failedClosed: boolean;
  /** True when agate did not answer and this ALLOW is the client's (failureMode "open"). */
  readonly failedOpen: boolean;
  /** True when `gate()` gave up waiting for the case: this is the original refusal (fail closed). */
  readonly timedOut: boolean;
  /** Set by `gate()` when it saw the case close without approval (REJECTED, EXPIRED, RESOLVED). */
  readonly caseState?: CaseStateName;
  /** The full response (fired triggers, missing evidence, backup, ...). */
  readonly response: EvaluateResponse;
}

/** toDecision wraps a response (from agate or synthetic) as a Decision. */
export function toDecision(response: EvaluateResponse): Decision {
  return {
    verdict: verdictName(response.verdict),
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
