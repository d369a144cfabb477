// The MCP server behind the gate: a command spoken to over stdio, or a streamable HTTP endpoint.

import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/** Where the upstream MCP server is. */
export type Upstream =
  /** A command that speaks MCP on its stdin/stdout; it inherits the gate's environment and stderr. */
  | { readonly command: string; readonly args?: readonly string[]; readonly cwd?: string }
  /** A streamable HTTP endpoint, e.g. "http://127.0.0.1:3000/mcp", with extra request headers. */
  | { readonly url: string; readonly headers?: Readonly<Record<string, string>> };

/**
 * upstreamTransport makes a fresh client transport to the upstream (one per downstream session:
 * an MCP session is stateful). A stdio upstream is spawned when the transport starts.
 */
export function upstreamTransport(upstream: Upstream): Transport {
  if ("url" in upstream) {
    return new StreamableHTTPClientTransport(new URL(upstream.url), {
      requestInit: upstream.headers ? { headers: { ...upstream.headers } } : undefined,
    });
  }
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  return new StdioClientTransport({
    command: upstream.command,
    args: [...(upstream.args ?? [])],
    cwd: upstream.cwd,
    env,
    stderr: "inherit",
  });
}
