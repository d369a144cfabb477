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
  Verdict,
  WatchCasesRequestSchema,
} from "./gen/agate/v1/agate_pb.js";
import { type Decision, REDEEMABLE_VERDICTS, caseStateName, toDecision } from "./decision.js";
import { AgateError } from "./errors.js";
import { methods, type RpcMethod } from "./rpc.js";
import { statusOutcome } from "./status.js";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";

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

/** How long and how `gate` waits for a human. */
export interface GateOptions {
  /** How long to wait for the case to be acknowledged (default 60000 ms). */
  timeoutMs?: number;
  /** Stops waiting early; gate then resolves as on a timeout (fail closed). */
  signal?: AbortSignal;
  /**
   * How often to re-read the case while waiting (default 2000 ms). The WatchCases stream is the
   * fast path; the re-read covers an acknowledgement racing the stream's start and dropped events.
   */
  pollMs?: number;
}

/** How `waitForCase` waits. */
export interface WaitOptions extends GateOptions {
  /** Watch only this tenant's events (recommended: the case's tenant). */
  tenantId?: string;
}

/** A human decision on a case. */
export type AcknowledgeDecision = "approve" | "reject" | "resolve";

/** Who acknowledges and why. */
export interface AcknowledgeOptions {
  /**
   * The approver. Sent as the `x-agate-approver` call metadata (agate's development mode, `--auth
   * none`, takes the identity from there) and in the request's `approver` field.
   */
  approver?: string;
  /** Why (kept in the case history). */
  comment?: string;
}

const DEFAULT_DEADLINE_MS = 200;
const DEFAULT_GATE_TIMEOUT_MS = 60_000;
const DEFAULT_POLL_MS = 2_000;

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
   * gate evaluates and, on HOLD, PARK_ITEM or BLOCK, waits up to `timeoutMs` for a human to
   * acknowledge the case, then:
   * - approved: redeems it — evaluates the same action again with a new request id and
   *   `approval.caseId` — and returns that decision (ALLOW, once);
   * - rejected, expired or resolved: returns the original refusal with `caseState` and a reason;
   * - no acknowledgement in time (or `signal` aborted): returns the original refusal with
   *   `timedOut: true`.
   * ALLOW, DENY, SAFE_MODE and synthetic (failed closed/open) decisions return at once. Rejects as
   * `evaluate` does, and with an AgateError when agate refuses to show the case (e.g. NOT_FOUND).
   */
  async gate(request: EvaluateInput, options: GateOptions = {}): Promise<Decision> {
    const message = this.toRequest(request);
    const first = await this.evaluateMessage(message);
    if (!REDEEMABLE_VERDICTS.has(first.verdict) || first.caseId === "") return first;
    const closed = await this.waitForCase(first.caseId, { ...options, tenantId: message.tenantId });
    if (closed === undefined) return { ...first, timedOut: true, caseState: "OPEN" };
    if (closed.state === CaseState.APPROVED) {
      return this.evaluateMessage({
        ...message,
        requestId: randomUUID(),
        approval: create(ApprovalSchema, { caseId: first.caseId }),
      });
    }
    return { ...first, caseState: caseStateName(closed.state), reason: describeClosed(closed) };
  }

  /**
   * waitForCase resolves to the case once it has left OPEN (approved, rejected, resolved or
   * expired), or to undefined when `timeoutMs` passes or `signal` aborts first. It subscribes to
   * WatchCases (filtered by `tenantId`) first, then reads the case, so an acknowledgement that
   * happened before the stream started is not missed; it re-reads the case every `pollMs`. The
   * stream is cancelled before it resolves. Rejects with an AgateError when agate refuses to show
   * the case (NOT_FOUND, PERMISSION_DENIED, ...); a PDP that does not answer is waited for.
   */
  waitForCase(caseId: string, options: WaitOptions = {}): Promise<Case | undefined> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
    const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    const signal = options.signal;
    return new Promise<Case | undefined>((resolve, reject) => {
      let settled = false;
      let pollTimer: NodeJS.Timeout | undefined;
      const stream = this.grpc.makeServerStreamRequest(
        methods.watchCases.path,
        methods.watchCases.serializeRequest,
        methods.watchCases.deserializeResponse,
        create(WatchCasesRequestSchema, { tenantId: options.tenantId ?? "" }),
        this.metadata(),
        {},
      );
      const settle = (result: Case | undefined, error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearTimeout(pollTimer);
        signal?.removeEventListener("abort", onAbort);
        stream.cancel();
        if (error !== undefined) reject(error);
        else resolve(result);
      };
      const onAbort = (): void => settle(undefined);
      const check = (): void => {
        this.getCase(caseId).then(
          (c) => {
            if (c.state !== CaseState.OPEN) settle(c);
          },
          (e: unknown) => {
            if (e instanceof AgateError && statusOutcome(e.code) === "error") settle(undefined, e);
            // No answer: keep waiting; the next poll or an event may get through.
          },
        );
      };
      const poll = (): void => {
        if (settled) return;
        check();
        pollTimer = setTimeout(poll, pollMs);
      };
      const deadline = setTimeout(() => settle(undefined), timeoutMs);
      stream.on("data", (event: CaseEvent) => {
        if (event.case?.id === caseId && event.case.state !== CaseState.OPEN) settle(event.case);
        else if (event.dropped > 0n) check();
      });
      // The stream ends with CANCELLED when settled; before that, a broken stream leaves polling.
      stream.on("error", () => {});
      if (signal?.aborted) return settle(undefined);
      signal?.addEventListener("abort", onAbort);
      poll();
    });
  }

  /** getCase reads one case. Rejects with an AgateError on any non-OK status (NOT_FOUND, ...). */
  async getCase(caseId: string): Promise<Case> {
    const response = await this.unary(methods.getCase, create(GetCaseRequestSchema, { caseId }), "getCase");
    if (!response.case) throw new AgateError(grpc.status.INTERNAL, "GetCase answered without a case", "agate misbehaved");
    return response.case;
  }

  /**
   * acknowledge records a human decision on an open case and resolves to the case after it.
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
    const request = create(AcknowledgeRequestSchema, {
      caseId,
      decision: wire,
      approver: options.approver ?? "",
      comment: options.comment ?? "",
    });
    const response = await this.unary(methods.acknowledge, request, "acknowledge", metadata);
    if (!response.case) {
      throw new AgateError(grpc.status.INTERNAL, "Acknowledge answered without a case", "agate misbehaved");
    }
    return response.case;
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
    if (isMessage(request, EvaluateRequestSchema)) {
      message = request;
    } else {
      try {
        message = fromJson(EvaluateRequestSchema, request);
      } catch (e) {
        this.count.error++;
        throw new AgateError(grpc.status.INVALID_ARGUMENT, (e as Error).message, "cannot encode the request");
      }
    }
    // A shallow copy: the caller's message is not changed.
    return message.requestId ? message : { ...message, requestId: randomUUID() };
  }

  private async evaluateMessage(request: EvaluateRequest): Promise<Decision> {
    let response: EvaluateResponse;
    try {
      response = await this.unary(methods.evaluate, request, "evaluate");
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
      );
    }
    this.count.ok++;
    if (response.verdict !== Verdict.ALLOW) this.count.escalated++;
    return toDecision(response);
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.token !== undefined) metadata.set("authorization", `Bearer ${this.token}`);
    return metadata;
  }

  // unary makes one call with the client's deadline; every non-OK status rejects as an AgateError.
  private unary<I extends DescMessage, O extends DescMessage>(
    method: RpcMethod<I, O>,
    request: MessageShape<I>,
    what: string,
    metadata: grpc.Metadata = this.metadata(),
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.grpc.makeUnaryRequest(
        method.path,
        method.serializeRequest,
        method.deserializeResponse,
        request,
        metadata,
        { deadline: Date.now() + this.deadlineMs },
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

function describeClosed(c: Case): string {
  const last = c.history[c.history.length - 1];
  const state = caseStateName(c.state).toLowerCase();
  let text = `case ${c.id} was ${state}`;
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
