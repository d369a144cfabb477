// The gate as a proxy: an MCP client talks to it over stdio or streamable HTTP; behind it, per
// client session, one session with the upstream MCP server (see bridge.ts).

import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { type Bridge, startBridge } from "./bridge.js";
import { type HttpEndpoint, serveStreamableHttp } from "./http.js";
import type { ToolGate } from "./tool_gate.js";
import { type Upstream, upstreamTransport } from "./upstream.js";

/** What the proxy gates and where it forwards. */
export interface ProxyOptions {
  readonly gate: ToolGate;
  readonly upstream: Upstream;
  /** Where refused calls and transport errors are reported (default: nowhere). */
  readonly log?: (line: string) => void;
}

/**
 * serveStdio serves one MCP client on this process's stdin/stdout (so nothing else may write to
 * stdout). Resolves once both sides started; the bridge's `closed` resolves when either ends.
 */
export function serveStdio(options: ProxyOptions): Promise<Bridge> {
  return startBridge(new StdioServerTransport(), upstreamTransport(options.upstream), options.gate, options);
}

/**
 * serveHttp serves MCP over streamable HTTP at `http://<listen><path>`; each client session gets
 * its own upstream session (a stdio upstream is spawned per session).
 */
export function serveHttp(options: ProxyOptions & { readonly listen: string; readonly path?: string }): Promise<HttpEndpoint> {
  return serveStreamableHttp(options.listen, options.path ?? "/mcp", (downstream) =>
    startBridge(downstream, upstreamTransport(options.upstream), options.gate, options),
  );
}
