// AgateError: how the client rejects when a call itself is wrong (agate refused it, the request
// cannot be encoded, the options are bad). Verdicts that refuse are never errors: see Decision.

import { type StatusName, statusName } from "./status.js";

// What the caller should do about each refusal; the server's own message says what was wrong.
const ADVICE: Partial<Record<StatusName, string>> = {
  INVALID_ARGUMENT: "fix the named field of the request; it was not evaluated",
  NOT_FOUND: "check the id: agate knows no such case (or it belongs to another tenant)",
  ALREADY_EXISTS:
    "this request_id was already decided for a different request; use a fresh request_id for a new action",
  PERMISSION_DENIED:
    "this principal may not do that; act as one the lane or tenant allows (its owner, backup or fallback for a case)",
  FAILED_PRECONDITION: "the case is no longer in a state that allows this; read it again with getCase",
  OUT_OF_RANGE: "a value of the request is out of range; fix the request",
  UNAUTHENTICATED: "the call carries no valid credentials; set the client's token or tls options",
};

/**
 * AgateError is how the client rejects when agate answered that a call itself is wrong
 * (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, ALREADY_EXISTS,
 * OUT_OF_RANGE, UNAUTHENTICATED), when a request cannot be encoded, and when the client is
 * misconfigured. Its message says what happened and what to do; `details` is agate's own message
 * (for INVALID_ARGUMENT it names the field, e.g. "model.confidence: must be in [0, 1], got 1.5").
 */
export class AgateError extends Error {
  /** The gRPC status code, e.g. 3 for INVALID_ARGUMENT (compare with `GrpcStatus`). */
  readonly code: number;
  /** The status code's name, e.g. "INVALID_ARGUMENT". */
  readonly codeName: StatusName;
  /** The message as agate (or the client, for a request it could not encode) sent it. */
  readonly details: string;

  constructor(code: number, details: string, what = "agate refused the call") {
    const name = statusName(code);
    const advice = ADVICE[name];
    super(`${what} (${name}: ${details})${advice ? `: ${advice}` : ""}`);
    this.name = "AgateError";
    this.code = code;
    this.codeName = name;
    this.details = details;
  }
}
