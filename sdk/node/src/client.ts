// Client: agate's TypeScript client, failing closed exactly as the C++ client (client/client.h).
//
// Every call carries a deadline (`deadlineMs`) and does not wait for a server that is not ready.
// When agate does not answer — UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL,
// UNKNOWN, CANCELLED, ABORTED, UNIMPLEMENTED, DATA_LOSS — `evaluate` resolves to a synthetic
// decision: HOLD with `failedClosed` (default) or ALLOW with `failedOpen` (failureMode "open");
// `reason` says what happened. When agate answers that the request itself is wrong
// (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, ALREADY_EXISTS,
// OUT_OF_RANGE, UNAUTHENTICATED) `evaluate` rejects with an AgateError: a caller's bug is never
// masked as a verdict. The table is sdk/status_outcomes.json (see status.ts).

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { create, fromJson, isMessage } from "@bufbuild/protobuf";
import {
  AcknowledgeRequestSchema,
  ApprovalSchema,
  type Case,
  CaseState,
  type CaseEvent,
  Decision as WireDecision,
  type EvaluateRequest,
  type EvaluateRequestJson,
  EvaluateRequestSchema,
  type EvaluateResponse,
  EvaluateResponseSchema,
  GetCaseRequestSchema,
  type GetStatsResponse,
  GetStatsRequestSchema,
  type ListCasesRequestJson,
  ListCasesRequestSchema,
  type ListCasesResponse,
  Verdict,
  WatchCasesRequestSchema,
} from "./gen/agate/v1/agate_pb.js";
import { type Decision, REDEEMABLE_VERDICTS, caseStateName, toDecision } from "./decision.js";
import { AgateError } from "./errors.js";
import { methods, type RpcMethod } from "./rpc.js";
import { statusOutcome } from "./status.js";
import type { DescMessage, JsonValue, MessageShape } from "@bufbuild/protobuf";

/**
 * A request to evaluate: a generated `EvaluateRequest` message, or the same as a proto3 JSON object
 * (lowerCamelCase as typed here; snake_case names such as `request_id` are accepted too, as by
 * `agate eval`). `requestId` may be left out: the client then generates one.
 */
export type EvaluateInput = EvaluateRequest | EvaluateRequestJson;

/** Mutual TLS material: each entry is a file path (string) or the PEM contents (Buffer). */
export interface TlsOptions {
  /** CA certificate(s) that sign agate's server certificate; the system roots when absent. */
  ca?: string | Buffer;
  /** This client's certificate chain (with `key`, for mutual TLS). */
  cert?: string | Buffer;
  /** This client's private key (with `cert`). */
  key?: string | Buffer;
}

/** How a Client talks to agate. Every field is optional. */
export interface ClientOptions {
  /** Per-call deadline in milliseconds (default 200); past it the call fails per failureMode. */
  deadlineMs?: number;
  /** What evaluate returns when agate does not answer: "closed" (HOLD, default) or "open" (ALLOW). */
  failureMode?: "closed" | "open";
  /** Connect with TLS (mutual when cert and key are given) instead of plaintext. */
  tls?: TlsOptions;
  /**
   * Bearer token sent as `authorization: Bearer <token>` metadata on every call. Without `tls` it
   * travels in clear text: use that only over loopback or a Unix socket.
   */
  token?: string;
  /** Extra grpc-js channel options (advanced; the reconnect backoff defaults are agate's). */
  channelOptions?: grpc.ChannelOptions;
}

/** Calls counted since the client was created (the C++ client's ClientCounters). */
export interface ClientCounters {
  /** Evaluate answers from agate (any verdict). */
  ok: number;
  /** Answers whose verdict is not ALLOW. */
  escalated: number;
  /** Requests refused (rejected with an AgateError). */
  error: number;
  /** No answer: synthetic HOLD. */
  failedClosed: number;
  /** No answer: synthetic ALLOW. */
  failedOpen: number;
}

/** How long `gate` waits for a human. */
export interface GateOptions {
  /**
   * How long to wait for the case to be acknowledged, in milliseconds (default 300000; Infinity:
   * no limit). Past it gate returns the original refusal with `timedOut` (fail closed).
   */
  timeoutMs?: number;
  /** Stops waiting early; gate then returns as on a timeout. */
  signal?: AbortSignal;
}

/** How `waitForCase` waits. */
export interface WaitOptions extends GateOptions {
  /** Watch only this tenant's case events (recommended: the case's tenant). */
  tenantId?: string;
}

/** A human decision on a case. */
export type AcknowledgeDecision = "approve" | "reject" | "resolve";

/** Who acknowledges and why. */
export interface AcknowledgeOptions {
  /**
   * In development mode (agate-server --auth none) the identity to act as, sent as the
   * `x-agate-approver` call metadata; with real authentication the token or certificate decides.
   */
  approver?: string;
  /** Why (kept in the case history). */
  comment?: string;
  /** Deadline of this call (default 5000 ms). */
  timeoutMs?: number;
}

const DEFAULT_DEADLINE_MS = 200;
const DEFAULT_GATE_TIMEOUT_MS = 300_000;
const CALL_TIMEOUT_MS = 5_000; // getCase and acknowledge: not the hot path
// While waiting, the case is read again after 1 s, 2 s, 4 s, ... at most every 15 s, and at once
// when the stream dropped events: the server gives no signal that a subscription is in place.
const RECHECK_FIRST_MS = 1_000;
const RECHECK_MAX_MS = 15_000;
/** Appended to the request_id for gate's redemption (as the Python SDK does): see gate(). */
const REDEEM_SUFFIX = ":redeem";

const WIRE_DECISIONS: Record<AcknowledgeDecision, WireDecision> = {
  approve: WireDecision.APPROVE,
  reject: WireDecision.REJECT,
  resolve: WireDecision.RESOLVE,
};

/**
 * Client evaluates proposed agent actions against agate and fails closed. One Client per target is
 * enough: it multiplexes every call over one HTTP/2 channel. Safe to share across async tasks.
 *
 * Example:
 * ```ts
 * const agate = new Client("127.0.0.1:7878", { deadlineMs: 200 });
 * const d = await agate.evaluate({ tenantId: "acme", action: { type: "refund", amount: 400 } });
 * if (d.verdict !== "ALLOW") return `not now: ${d.verdict} (case ${d.caseId}, owner ${d.owner})`;
 * ```
 */
export class Client {
  /** The target as given: "host:port" or "unix:/path". */
  readonly target: string;
  private readonly deadlineMs: number;
  private readonly failClosed: boolean;
  private readonly token: string | undefined;
  private readonly grpc: grpc.Client;
  private readonly count: ClientCounters = { ok: 0, escalated: 0, error: 0, failedClosed: 0, failedOpen: 0 };

  /**
   * Creates a client; it connects lazily, on the first call. Throws an AgateError
   * (INVALID_ARGUMENT) for an empty target, a non-positive deadline, an unknown failureMode or
   * unreadable TLS files.
   */
  constructor(target: string, options: ClientOptions = {}) {
    if (!target) throw new AgateError(grpc.status.INVALID_ARGUMENT, "target: required", "bad client options");
    const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!(deadlineMs > 0) || !Number.isFinite(deadlineMs)) {
      throw new AgateError(
        grpc.status.INVALID_ARGUMENT,
        `deadlineMs: must be a positive number of milliseconds, got ${deadlineMs}`,
        "bad client options",
      );
    }
    const failureMode = options.failureMode ?? "closed";
    if (failureMode !== "closed" && failureMode !== "open") {
      throw new AgateError(
        grpc.status.INVALID_ARGUMENT,
        `failureMode: must be "closed" or "open", got ${JSON.stringify(failureMode)}`,
        "bad client options",
      );
    }
    this.target = target;
    this.deadlineMs = deadlineMs;
    this.failClosed = failureMode === "closed";
    this.token = options.token;
    this.grpc = new grpc.Client(target, channelCredentials(options.tls), {
      // A down PDP must fail fast, not back off for seconds between reconnection attempts.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
      ...options.channelOptions,
    });
  }

  /**
   * evaluate asks agate about one proposed action. It resolves to agate's decision, or — when
   * agate does not answer within `deadlineMs` — to a synthetic HOLD (`failedClosed`) or ALLOW
   * (`failedOpen`). It rejects with an AgateError when the request is refused (INVALID_ARGUMENT
   * names the field) or cannot be encoded. A request without `requestId` gets a random one; reuse
   * an id to get the same decision again (agate's idempotency).
   */
  async evaluate(request: EvaluateInput): Promise<Decision> {
    return this.evaluateMessage(this.toRequest(request));
  }

  /**
   * gate evaluates the request and, if a person must decide, waits for them:
   * - ALLOW, DENY, SAFE_MODE, or the failure mode's decision: returned at once.
   * - HOLD, PARK_ITEM, BLOCK: waits up to `timeoutMs` for the case to be acknowledged, watching
   *   the tenant's case events. APPROVED: redeems the approval — evaluates the same action again
   *   with request_id + ":redeem" and `approval.caseId` — and returns that decision (ALLOW, once;
   *   `original` is the refusal). REJECTED, RESOLVED, EXPIRED: returns the original refusal with
   *   `caseState` and a reason saying who closed the case. Timeout or abort: returns the original
   *   refusal with `timedOut: true` (fail closed); the case stays open.
   *
   * With the same request_id, a second gate() after a timeout or a crash resumes: the same case,
   * and a redemption that already happened is replayed rather than spent twice. Rejects as
   * `evaluate` does, and with the AgateError of a GetCase that agate refuses (e.g.
   * PERMISSION_DENIED); a case agate no longer knows (NOT_FOUND) returns the refusal with a reason.
   */
  async gate(request: EvaluateInput, options: GateOptions = {}): Promise<Decision> {
    const message = this.toRequest(request);
    const first = await this.evaluateMessage(message);
    if (!REDEEMABLE_VERDICTS.has(first.verdict) || first.caseId === "") return first;
    let seen: Case | undefined;
    try {
      seen = await this.waitForCase(first.caseId, { ...options, tenantId: message.tenantId });
    } catch (e) {
      if (!(e instanceof AgateError) || e.codeName !== "NOT_FOUND") throw e;
      return {
        ...first,
        reason: `case ${first.caseId} is unknown to agate now (${e.details}); resubmit the request with a new request_id`,
      };
    }
    const caseState = seen ? caseStateName(seen.state) : undefined;
    if (seen === undefined || seen.state === CaseState.OPEN) return { ...first, timedOut: true, case: seen, caseState };
    if (seen.state === CaseState.APPROVED) {
      const redeemed = await this.evaluateMessage({
        ...message,
        requestId: message.requestId + REDEEM_SUFFIX,
        signals: {}, // counted with the original request; nothing new was observed since
        approval: create(ApprovalSchema, { caseId: first.caseId }),
      });
      return { ...redeemed, case: seen, caseState, original: first };
    }
    return { ...first, case: seen, caseState, reason: closingReason(seen) };
  }

  /**
   * waitForCase resolves once the case has left OPEN (approved, rejected, resolved or expired),
   * with the case; when `timeoutMs` (default 300000) passes or `signal` aborts first, with the
   * case as last seen (still OPEN), or undefined if agate never answered. It subscribes to
   * WatchCases (filtered by `tenantId`) first and reads the case after, so an acknowledgement
   * before the subscription is seen by the read and one after it by the stream; it reads the case
   * again after 1 s, 2 s, 4 s, ... (at most every 15 s), at once when the stream dropped events,
   * and subscribes again when the stream ends. Every stream is cancelled before it resolves.
   * Rejects with the AgateError of a GetCase that agate refuses (NOT_FOUND, PERMISSION_DENIED,
   * ...); a PDP that does not answer is waited for.
   */
  waitForCase(caseId: string, options: WaitOptions = {}): Promise<Case | undefined> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
    const { signal } = options;
    const watchRequest = create(WatchCasesRequestSchema, { tenantId: options.tenantId ?? "" });
    const readTimeoutMs = Math.max(this.deadlineMs, 1_000);
    return new Promise<Case | undefined>((resolve, reject) => {
      let settled = false;
      let last: Case | undefined;
      let stream: grpc.ClientReadableStream<CaseEvent> | undefined;
      let recheck: NodeJS.Timeout | undefined;
      let interval = RECHECK_FIRST_MS;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearTimeout(recheck);
        signal?.removeEventListener("abort", onAbort);
        stream?.cancel();
        if (error !== undefined) reject(error);
        else resolve(last);
      };
      const onAbort = (): void => settle();
      const see = (c: Case): void => {
        last = c;
        if (c.state !== CaseState.OPEN) settle();
      };
      const subscribe = (): void => {
        const s = this.grpc.makeServerStreamRequest(
          methods.watchCases.path,
          methods.watchCases.serializeRequest,
          methods.watchCases.deserializeResponse,
          watchRequest,
          this.metadata(),
          {},
        );
        stream = s;
        s.on("data", (event: CaseEvent) => {
          if (event.case?.id === caseId) see(event.case);
          if (event.dropped > 0n && !settled) look(); // this case's event may be among them
        });
        const ended = (): void => {
          if (stream === s) stream = undefined; // subscribe again at the next look
        };
        s.on("error", ended); // also CANCELLED, once settled
        s.on("end", ended);
      };
      const look = (): void => {
        if (stream === undefined) subscribe();
        this.unary(methods.getCase, create(GetCaseRequestSchema, { caseId }), "getCase", this.metadata(), readTimeoutMs).then(
          (response) => {
            if (!settled && response.case) see(response.case);
          },
          (e: AgateError) => {
            if (statusOutcome(e.code) === "error") settle(e); // no answer: look again later
          },
        );
      };
      const lookLater = (): void => {
        recheck = setTimeout(() => {
          look();
          lookLater();
        }, interval);
        interval = Math.min(interval * 2, RECHECK_MAX_MS);
      };
      const deadline = setTimeout(() => settle(), Math.min(timeoutMs, 2 ** 31 - 1));
      if (signal?.aborted) return settle();
      signal?.addEventListener("abort", onAbort);
      look();
      lookLater();
    });
  }

  /** getCase reads one case. Rejects with an AgateError on any non-OK status (NOT_FOUND, ...). */
  async getCase(caseId: string, options: { timeoutMs?: number } = {}): Promise<Case> {
    const request = create(GetCaseRequestSchema, { caseId });
    const response = await this.unary(methods.getCase, request, "getCase", this.metadata(), options.timeoutMs);
    if (!response.case) throw new AgateError(grpc.status.INTERNAL, "GetCase answered without a case", "agate misbehaved");
    return response.case;
  }

  /**
   * acknowledge records a person's decision on an open case and resolves to the case after it.
   * Rejects with an AgateError: PERMISSION_DENIED (not the lane's owner, backup or fallback),
   * NOT_FOUND, FAILED_PRECONDITION (already closed), or a status meaning agate did not answer.
   */
  async acknowledge(caseId: string, decision: AcknowledgeDecision, options: AcknowledgeOptions = {}): Promise<Case> {
    const wire = WIRE_DECISIONS[decision];
    if (wire === undefined) {
      throw new AgateError(
        grpc.status.INVALID_ARGUMENT,
        `decision: must be "approve", "reject" or "resolve", got ${JSON.stringify(decision)}`,
        "bad acknowledge call",
      );
    }
    const metadata = this.metadata();
    if (options.approver) metadata.set("x-agate-approver", options.approver);
    const request = create(AcknowledgeRequestSchema, { caseId, decision: wire, comment: options.comment ?? "" });
    const response = await this.unary(methods.acknowledge, request, "acknowledge", metadata, options.timeoutMs);
    if (!response.case) {
      throw new AgateError(grpc.status.INTERNAL, "Acknowledge answered without a case", "agate misbehaved");
    }
    return response.case;
  }

  /**
   * listCases returns one page of cases matching the filter (empty filters match everything),
   * newest first; pass `nextPageToken` back as `pageToken` for the next page. 5 s deadline.
   */
  async listCases(filter: ListCasesRequestJson = {}, options: { timeoutMs?: number } = {}): Promise<ListCasesResponse> {
    const request = this.decode(ListCasesRequestSchema, filter, "list cases filter");
    return this.unary(methods.listCases, request, "listCases", this.metadata(), options.timeoutMs);
  }

  /** stats returns agate's escalation statistics (per trigger: fired, open, approved, ...). 5 s deadline. */
  async stats(options: { timeoutMs?: number } = {}): Promise<GetStatsResponse> {
    return this.unary(methods.getStats, create(GetStatsRequestSchema), "getStats", this.metadata(), options.timeoutMs);
  }

  /**
   * watchCases yields every case transition from now on (filtered by tenant and lane), until the
   * caller stops iterating (the stream is then cancelled) or the stream fails (an AgateError).
   *
   * Example:
   *   for await (const event of agate.watchCases({ tenantId: "acme" })) {
   *     if (event.case?.state === pb.CaseState.APPROVED) break;
   *   }
   */
  async *watchCases(filter: { tenantId?: string; lane?: string } = {}): AsyncGenerator<CaseEvent, void, undefined> {
    const stream = this.grpc.makeServerStreamRequest(
      methods.watchCases.path,
      methods.watchCases.serializeRequest,
      methods.watchCases.deserializeResponse,
      create(WatchCasesRequestSchema, { tenantId: filter.tenantId ?? "", lane: filter.lane ?? "" }),
      this.metadata(),
      {},
    );
    try {
      for await (const event of stream) yield event as CaseEvent;
    } catch (e) {
      const error = e as grpc.ServiceError;
      const verb = statusOutcome(error.code) === "error" ? "refused" : "did not answer";
      throw new AgateError(error.code, error.details, `agate ${verb} watchCases`);
    } finally {
      stream.cancel();
    }
  }

  /** counters returns a snapshot of the calls counted so far. */
  counters(): ClientCounters {
    return { ...this.count };
  }

  /** channel is the underlying grpc-js channel (to share it, or for raw calls in benchmarks). */
  get channel(): ReturnType<grpc.Client["getChannel"]> {
    return this.grpc.getChannel();
  }

  /** close closes the channel; calls in flight fail (and evaluate then fails closed/open). */
  close(): void {
    this.grpc.close();
  }

  private toRequest(request: EvaluateInput): EvaluateRequest {
    let message: EvaluateRequest;
    try {
      message = this.decode(EvaluateRequestSchema, request, "request");
    } catch (e) {
      this.count.error++;
      throw e;
    }
    // A shallow copy: the caller's message is not changed.
    return message.requestId ? message : { ...message, requestId: randomUUID() };
  }

  // decode accepts a message of the schema as is, or its proto3 JSON (either name style).
  private decode<T extends DescMessage>(schema: T, value: unknown, what: string): MessageShape<T> {
    if (isMessage(value, schema)) return value;
    try {
      return fromJson(schema, value as JsonValue);
    } catch (e) {
      throw new AgateError(grpc.status.INVALID_ARGUMENT, (e as Error).message, `cannot encode the ${what}`);
    }
  }

  private async evaluateMessage(request: EvaluateRequest): Promise<Decision> {
    let response: EvaluateResponse;
    try {
      response = await this.unary(methods.evaluate, request, "evaluate", this.metadata(), this.deadlineMs);
    } catch (e) {
      if (!(e instanceof AgateError)) throw e;
      if (statusOutcome(e.code) === "error") {
        this.count.error++;
        throw e;
      }
      const closed = this.failClosed;
      closed ? this.count.failedClosed++ : this.count.failedOpen++;
      return toDecision(
        create(EvaluateResponseSchema, {
          verdict: closed ? Verdict.HOLD : Verdict.ALLOW,
          failedClosed: closed,
          failedOpen: !closed,
          reason: `agate did not answer (${e.codeName}: ${e.details}); failing ${closed ? "closed" : "open"}`,
        }),
        request.requestId,
      );
    }
    this.count.ok++;
    if (response.verdict !== Verdict.ALLOW) this.count.escalated++;
    return toDecision(response, request.requestId);
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.token !== undefined) metadata.set("authorization", `Bearer ${this.token}`);
    return metadata;
  }

  // unary makes one call with a deadline; every non-OK status rejects as an AgateError.
  private unary<I extends DescMessage, O extends DescMessage>(
    method: RpcMethod<I, O>,
    request: MessageShape<I>,
    what: string,
    metadata: grpc.Metadata = this.metadata(),
    timeoutMs: number = CALL_TIMEOUT_MS,
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.grpc.makeUnaryRequest(
        method.path,
        method.serializeRequest,
        method.deserializeResponse,
        request,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error) {
            const verb = statusOutcome(error.code) === "error" ? "refused" : "did not answer";
            reject(new AgateError(error.code, error.details, `agate ${verb} ${what}`));
          } else {
            resolve(response as MessageShape<O>);
          }
        },
      );
    });
  }
}

// closingReason says how a case ended without an approval, and what to do next (the Python
// SDK's words, so logs read the same).
function closingReason(c: Case): string {
  if (c.state === CaseState.EXPIRED) {
    return `case ${c.id} expired at its SLA deadline with no decision; the request is void: resubmit it with a new request_id`;
  }
  const last = c.history[c.history.length - 1];
  let text = `case ${c.id} was ${caseStateName(c.state).toLowerCase()}`;
  if (last?.actor) text += ` by ${last.actor}`;
  if (last?.comment) text += `: ${last.comment}`;
  return text;
}

function pem(what: string, value: string | Buffer | undefined): Buffer | undefined {
  if (value === undefined || Buffer.isBuffer(value)) return value;
  try {
    return readFileSync(value);
  } catch (e) {
    throw new AgateError(
      grpc.status.INVALID_ARGUMENT,
      `tls.${what}: cannot read ${value}: ${(e as Error).message}`,
      "bad client options",
    );
  }
}

function channelCredentials(tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new AgateError(
      grpc.status.INVALID_ARGUMENT,
      "tls: cert and key go together (mutual TLS needs both)",
      "bad client options",
    );
  }
  return grpc.credentials.createSsl(pem("ca", tls.ca) ?? null, pem("key", tls.key) ?? null, pem("cert", tls.cert) ?? null);
}
