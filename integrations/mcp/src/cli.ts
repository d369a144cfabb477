#!/usr/bin/env node
// agate-mcp-gate: an MCP proxy that asks agate before every tools/call. See docs/mcp.md.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { AgateError, Client } from "@agate/client";
import { MappingError, loadMapping } from "./mapping.js";
import { serveHttp, serveStdio } from "./proxy.js";
import { ToolGate } from "./tool_gate.js";
import type { Upstream } from "./upstream.js";

const USAGE = `usage: agate-mcp-gate --agate ADDR --mapping FILE [options] (--upstream-url URL | -- COMMAND [ARG]...)

Serves MCP to a client and forwards everything to the upstream MCP server, except that each
tools/call is first evaluated by agate: ALLOW forwards it; HOLD, BLOCK and PARK_ITEM answer that it
awaits approval, and the identical call after approval is redeemed and forwarded once; DENY and
SAFE_MODE refuse it; no answer from agate refuses it (fail closed).

  --agate ADDR           agate's gRPC address, HOST:PORT or unix:PATH (required)
  --mapping FILE         how tool calls become agate requests, YAML or JSON (required; docs/mcp.md)
  --listen HOST:PORT     serve streamable HTTP at http://HOST:PORT/mcp (default: serve stdio)
  --path PATH            the HTTP endpoint's path (default /mcp)
  --upstream-url URL     the upstream server's streamable HTTP endpoint (else: the COMMAND after --)
  --upstream-header H    an extra header for the upstream, "Name: value" (repeatable)
  --deadline-ms N        per-call deadline for agate (default 200)
  --token-file FILE      bearer token for agate, read from FILE (or set AGATE_TOKEN)
  --tls-ca FILE, --tls-cert FILE, --tls-key FILE
                         TLS (mutual with cert and key) to agate
  --quiet                do not log refused calls on stderr
  --help
`;

function fail(message: string): never {
  process.stderr.write(`agate-mcp-gate: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        agate: { type: "string" },
        mapping: { type: "string" },
        listen: { type: "string" },
        path: { type: "string", default: "/mcp" },
        "upstream-url": { type: "string" },
        "upstream-header": { type: "string", multiple: true, default: [] },
        "deadline-ms": { type: "string", default: "200" },
        "token-file": { type: "string" },
        "tls-ca": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!o.agate) fail(`--agate is required\n${USAGE}`);
  if (!o.mapping) fail(`--mapping is required\n${USAGE}`);
  if (Boolean(o["upstream-url"]) === positionals.length > 0) {
    fail(`give the upstream either as --upstream-url URL or as a command after --\n${USAGE}`);
  }
  const upstream: Upstream = o["upstream-url"]
    ? { url: o["upstream-url"], headers: Object.fromEntries(o["upstream-header"].map(header)) }
    : { command: positionals[0]!, args: positionals.slice(1) };

  const log = o.quiet ? undefined : (line: string) => process.stderr.write(`agate-mcp-gate: ${line}\n`);
  let gate: ToolGate;
  try {
    const token = o["token-file"] ? readFileSync(o["token-file"], "utf8").trim() : process.env.AGATE_TOKEN;
    const tls =
      o["tls-ca"] || o["tls-cert"] || o["tls-key"] ? { ca: o["tls-ca"], cert: o["tls-cert"], key: o["tls-key"] } : undefined;
    const client = new Client(o.agate, { deadlineMs: Number(o["deadline-ms"]), failureMode: "closed", token, tls });
    gate = new ToolGate(client, loadMapping(o.mapping));
  } catch (e) {
    if (e instanceof MappingError || e instanceof AgateError) fail(e.message);
    fail(`${(e as Error).message}`);
  }

  if (o.listen) {
    const endpoint = await serveHttp({ gate, upstream, log, listen: o.listen, path: o.path });
    process.stderr.write(`agate-mcp-gate: listening on ${endpoint.url}\n`);
    const stop = (): void => void endpoint.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    return;
  }
  const bridge = await serveStdio({ gate, upstream, log });
  // The client went away (stdin ended) or we are told to stop: close the upstream too (a stdio
  // upstream gets its stdin closed, then SIGTERM), then exit.
  const stop = (): void => void bridge.close();
  process.stdin.once("end", stop);
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await bridge.closed;
  process.exit(0);
}

function header(line: string): [string, string] {
  const colon = line.indexOf(":");
  if (colon <= 0) fail(`--upstream-header ${JSON.stringify(line)}: must be "Name: value"`);
  return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
}

main().catch((e: unknown) => {
  process.stderr.write(`agate-mcp-gate: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
