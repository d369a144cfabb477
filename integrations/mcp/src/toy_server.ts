#!/usr/bin/env node
// A toy MCP server for the gate's tests, benchmark and docs: a support desk with a `refund` tool
// (money: agate blocks large ones), a `lookup_order` tool (harmless) and a `grant_role` tool
// (admin scope: agate denies it). Every tool call it executes is appended as one JSON line
// {"tool": ..., "arguments": ...} to the file named by --record, so a test can assert that a
// refused call never reached it.
//
//   node dist/toy_server.js [--record FILE]                      MCP over stdio
//   node dist/toy_server.js [--record FILE] --http 127.0.0.1:0   MCP over streamable HTTP at /mcp
//                                                                 (prints "listening on URL" on stderr)

import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import { serveStreamableHttp } from "./http.js";

function toyServer(record: string | undefined): McpServer {
  const server = new McpServer({ name: "toy-support-desk", version: "1.0.0" });
  const executed = (tool: string, args: Record<string, unknown>, text: string) => {
    if (record) appendFileSync(record, `${JSON.stringify({ tool, arguments: args })}\n`);
    return { content: [{ type: "text" as const, text }] };
  };
  server.registerTool(
    "refund",
    {
      description: "Refund an order (irreversible).",
      inputSchema: { order_id: z.string(), amount: z.number(), reason: z.string().optional() },
    },
    async (args) => executed("refund", args, `refunded ${args.amount} on ${args.order_id}`),
  );
  server.registerTool(
    "lookup_order",
    { description: "Look an order up (read-only).", inputSchema: { order_id: z.string() } },
    async (args) => executed("lookup_order", args, `order ${args.order_id}: shipped, 400.00 USD`),
  );
  server.registerTool(
    "grant_role",
    { description: "Grant a user a role (needs the admin scope).", inputSchema: { user: z.string(), role: z.string() } },
    async (args) => executed("grant_role", args, `granted ${args.role} to ${args.user}`),
  );
  return server;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { record: { type: "string" }, http: { type: "string" } } });
  if (values.http) {
    const endpoint = await serveStreamableHttp(values.http, "/mcp", async (transport) => {
      const server = toyServer(values.record);
      const closed = new Promise<void>((resolve) => (server.server.onclose = resolve));
      await server.connect(transport);
      return { closed };
    });
    process.stderr.write(`listening on ${endpoint.url}\n`);
    return;
  }
  await toyServer(values.record).connect(new StdioServerTransport());
}

main().catch((e: unknown) => {
  process.stderr.write(`toy_server: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
