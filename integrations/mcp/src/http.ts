// serveStreamableHttp serves MCP's streamable HTTP transport on one endpoint with one stateful
// session per client: a POST of `initialize` without a session id opens one (the
// `mcp-session-id` response header names it), later requests carry the id, DELETE ends it. What
// runs behind each session is the caller's (the gate's bridge, or the toy server).

import { randomUUID } from "node:crypto";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

/** Starts what serves one session on its transport; resolves to a promise of the session's end. */
export type SessionStarter = (transport: StreamableHTTPServerTransport) => Promise<{ closed: Promise<void> }>;

/** A running HTTP endpoint. */
export interface HttpEndpoint {
  /** e.g. "http://127.0.0.1:43117/mcp". */
  readonly url: string;
  /** close ends every session and stops listening. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * serveStreamableHttp listens on `listen` ("host:port"; port 0 picks a free one) and serves MCP
 * at `path`. Rejects if it cannot listen.
 */
export async function serveStreamableHttp(listen: string, path: string, start: SessionStarter): Promise<HttpEndpoint> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen ${listen}: must be HOST:PORT`);
  const host = m[1]!.replace(/^\[(.*)\]$/, "$1");

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== path) {
      return reply(res, 404, `no MCP endpoint here; it is ${path}`);
    }
    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const transport = sessions.get(sessionId);
      if (!transport) return reply(res, 404, "unknown or ended session; initialize a new one");
      return transport.handleRequest(req, res);
    }
    if (req.method !== "POST") return reply(res, 400, "no session: POST an initialize request first");
    const body = await readJson(req);
    const initializes = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!initializes) return reply(res, 400, "no session: POST an initialize request first");
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    let session;
    try {
      session = await start(transport);
    } catch (e) {
      return reply(res, 502, `cannot start the session: ${(e as Error).message}`);
    }
    void session.closed.then(() => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    });
    await transport.handleRequest(req, res, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) reply(res, e instanceof BodyError ? 400 : 500, (e as Error).message);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(m[2]), host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${path}`,
    close: async () => {
      await Promise.allSettled([...sessions.values()].map((t) => t.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

class BodyError extends Error {}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyError(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw new BodyError(`the body is not JSON: ${(e as Error).message}`);
  }
}

// reply answers with a JSON-RPC error object, as the MCP SDK's transports do.
function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}
