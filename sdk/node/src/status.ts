// The one table that says what a gRPC status from agate means for the caller. It is the C++
// client's (client/client.cc, Client::IsNoAnswer) and the Python SDK's, and all three are tested
// against sdk/status_outcomes.json.

import { status as GrpcStatus } from "@grpc/grpc-js";

/**
 * What a gRPC status means for an Evaluate call:
 * - `"answer"`: agate decided; the response carries the verdict (only OK).
 * - `"no_answer"`: agate did not decide (down, slow, overloaded, broken); the client's failure
 *   mode applies: a synthetic HOLD (`failedClosed`) or, when failing open, ALLOW (`failedOpen`).
 * - `"error"`: agate answered that the request itself is wrong; the call rejects with an
 *   {@link AgateError}, never masked as a verdict.
 */
export type StatusOutcome = "answer" | "no_answer" | "error";

/** The 17 gRPC status code names, indexed by code ("OK" is 0, "UNAUTHENTICATED" is 16). */
export const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** A gRPC status code name such as `"UNAVAILABLE"`. */
export type StatusName = (typeof STATUS_NAMES)[number];

/** The outcome of every status code, by name (the content of sdk/status_outcomes.json). */
export const STATUS_OUTCOMES: Readonly<Record<StatusName, StatusOutcome>> = Object.freeze({
  OK: "answer",
  CANCELLED: "no_answer",
  UNKNOWN: "no_answer",
  INVALID_ARGUMENT: "error",
  DEADLINE_EXCEEDED: "no_answer",
  NOT_FOUND: "error",
  ALREADY_EXISTS: "error",
  PERMISSION_DENIED: "error",
  RESOURCE_EXHAUSTED: "no_answer",
  FAILED_PRECONDITION: "error",
  ABORTED: "no_answer",
  OUT_OF_RANGE: "error",
  UNIMPLEMENTED: "no_answer",
  INTERNAL: "no_answer",
  UNAVAILABLE: "no_answer",
  DATA_LOSS: "no_answer",
  UNAUTHENTICATED: "error",
});

/**
 * statusName returns the name of a gRPC status code; a code outside 0..16 (which grpc-js never
 * reports) reads as "UNKNOWN", as gRPC itself treats it.
 */
export function statusName(code: number): StatusName {
  return STATUS_NAMES[code] ?? "UNKNOWN";
}

/** statusOutcome tells what a gRPC status code means for an Evaluate call (see {@link StatusOutcome}). */
export function statusOutcome(code: number): StatusOutcome {
  return STATUS_OUTCOMES[statusName(code)];
}

export { GrpcStatus };
