// bridge connects one MCP client session (downstream) to one MCP server session (upstream) at the
// JSON-RPC message level: every message passes through unchanged in both directions —
// initialize and its capabilities, tools/list, resources, prompts, completions, logging,
// notifications, cancellations, and the server's own requests (sampling, elicitation, roots) —
// except tools/call, which the ToolGate decides first: forwarded as is, or answered by the gate.
//
// Because the proxy never originates requests of its own, request ids need no rewriting.

import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
} from "@modelcontextprotocol/sdk/types.js";
import type { GateOutcome, ToolGate } from "./tool_gate.js";

/** What a bridge reports; `log` lines go to stderr in the CLI (stdout may be the MCP stream). */
export interface BridgeOptions {
  log?: (line: string) => void;
}

/** A running bridge. */
export interface Bridge {
  /** Resolves when either side closed (the other side is then closed too). */
  readonly closed: Promise<void>;
  /** close closes both sides. */
  close(): Promise<void>;
}

/**
 * startBridge wires and starts both transports (upstream first, so the upstream server is up before
 * the client's first message is read). Rejects if a transport cannot start.
 */
export async function startBridge(
  downstream: Transport,
  upstream: Transport,
  gate: ToolGate,
  options: BridgeOptions = {},
): Promise<Bridge> {
  const log = options.log ?? (() => {});
  const gating = new Map<RequestId, { cancelled: boolean }>(); // tools/call ids being decided
  const progressOwner = new Map<string | number, RequestId>(); // progressToken -> request id
  let initializeId: RequestId | undefined;
  let closing = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  const close = async (): Promise<void> => {
    if (closing) return closed;
    closing = true;
    await Promise.allSettled([downstream.close(), upstream.close()]);
    resolveClosed();
  };
  const report = (side: string) => (error: Error) => log(`${side}: ${error.message}`);
  const send = (to: Transport, side: string, message: JSONRPCMessage, relatedRequestId?: RequestId): void => {
    to.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId }).catch(report(side));
  };

  const decide = async (request: JSONRPCRequest): Promise<void> => {
    const params = (request.params ?? {}) as { name?: unknown; arguments?: unknown };
    const name = typeof params.name === "string" ? params.name : "";
    const args =
      params.arguments !== null && typeof params.arguments === "object" && !Array.isArray(params.arguments)
        ? (params.arguments as Record<string, unknown>)
        : {};
    const state = { cancelled: false };
    gating.set(request.id, state);
    let outcome;
    try {
      outcome = await gate.check(name, args);
    } catch (e) {
      // A bug, not a decision: fail closed with a JSON-RPC error.
      log(`tools/call ${name}: ${(e as Error).stack ?? e}`);
      outcome = undefined;
    } finally {
      gating.delete(request.id);
    }
    if (state.cancelled || closing) return; // the client gave up: nothing may run
    if (outcome?.forward) {
      send(upstream, "upstream", request);
      return;
    }
    if (outcome) log(`tools/call ${name}: not forwarded: ${summary(outcome)}`);
    const reply: JSONRPCMessage = outcome
      ? { jsonrpc: "2.0", id: request.id, result: outcome.result }
      : { jsonrpc: "2.0", id: request.id, error: { code: -32603, message: "agate gate failed; the call was not forwarded" } };
    send(downstream, "downstream", reply, request.id);
  };

  downstream.onmessage = (message: JSONRPCMessage) => {
    if (isJSONRPCRequest(message)) {
      const token = (message.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
      if (token !== undefined) progressOwner.set(token, message.id);
      if (message.method === "initialize") initializeId = message.id;
      if (message.method === "tools/call") {
        void decide(message);
        return;
      }
    } else if (isJSONRPCNotification(message) && message.method === "notifications/cancelled") {
      const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      const state = id === undefined ? undefined : gating.get(id);
      if (state) {
        state.cancelled = true;
        return; // upstream never saw the request
      }
    }
    send(upstream, "upstream", message);
  };

  upstream.onmessage = (message: JSONRPCMessage) => {
    let related: RequestId | undefined;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      related = message.id;
      if (message.id === initializeId && isJSONRPCResultResponse(message)) {
        const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
        if (typeof version === "string") upstream.setProtocolVersion?.(version);
      }
      for (const [token, id] of progressOwner) if (id === message.id) progressOwner.delete(token);
    } else if (isJSONRPCNotification(message) && message.method === "notifications/progress") {
      const token = (message.params as { progressToken?: string | number } | undefined)?.progressToken;
      related = token === undefined ? undefined : progressOwner.get(token);
    }
    send(downstream, "downstream", message, related);
  };

  downstream.onclose = () => void close();
  upstream.onclose = () => void close();
  downstream.onerror = report("downstream");
  upstream.onerror = report("upstream");

  await upstream.start();
  await downstream.start();
  return { closed, close };
}

// summary is one log line's worth of a refusal.
function summary(outcome: GateOutcome & { forward: false }): string {
  const d = outcome.decision;
  if (d && !d.failedClosed) return `${d.verdict}${d.caseId ? ` ${d.caseId}` : ""}${d.owner ? ` (owner ${d.owner})` : ""}`;
  const first = outcome.result.content[0];
  return first?.type === "text" ? first.text : "refused";
}
