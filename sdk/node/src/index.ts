// @agate/client: evaluate agent actions against agate, fail closed, wait for approval and redeem.
//
// Example:
//   import { Client } from "@agate/client";
//   const agate = new Client("127.0.0.1:7878");
//   const d = await agate.gate({ tenantId: "acme", itemId: "order-7", action: { type: "refund", amount: 400 } },
//                              { timeoutMs: 60_000 });
//   if (d.verdict === "ALLOW") await refund("order-7", 400);

export {
  Client,
  type AcknowledgeDecision,
  type AcknowledgeOptions,
  type ClientCounters,
  type ClientOptions,
  type EvaluateInput,
  type GateOptions,
  type TlsOptions,
  type WaitOptions,
} from "./client.js";
export {
  REDEEMABLE_VERDICTS,
  caseStateName,
  verdictName,
  type CaseStateName,
  type Decision,
  type VerdictName,
} from "./decision.js";
export { AgateError } from "./errors.js";
export {
  GrpcStatus,
  STATUS_NAMES,
  STATUS_OUTCOMES,
  statusName,
  statusOutcome,
  type StatusName,
  type StatusOutcome,
} from "./status.js";
export { agateServiceDefinition } from "./rpc.js";
/** The generated messages and enums of agate.v1 (protobuf-es), e.g. `pb.EvaluateResponseSchema`. */
export * as pb from "./gen/agate/v1/agate_pb.js";
/** protobuf-es helpers bound to the same runtime as `pb`: `toJson(pb.EvaluateResponseSchema, d.response)`. */
export { create, fromJson, toJson } from "@bufbuild/protobuf";
