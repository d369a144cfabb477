// Fixtures for the gate's tests (not a test file): the toy MCP server, the gate CLI, an MCP client.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const GATE_CLI = join(PACKAGE, "dist", "cli.js");
export const TOY = join(PACKAGE, "dist", "toy_server.js");
export const MAPPING = join(PACKAGE, "toy-mapping.yaml");

/** A fresh file for the toy server to record what it executed. */
export function recordFile() {
  return join(mkdtempSync(join(tmpdir(), "agate-mcp-")), "executed.jsonl");
}

/** executed lists the calls the toy server ran, as {tool, arguments}. */
export function executed(record) {
  if (!existsSync(record)) return [];
  return readFileSync(record, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/**
 * spawnListening runs `node ARGS` and resolves once it prints "listening on URL" on stderr;
 * {url, stop(), log()}.
 */
export function spawnListening(args) {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let log = "";
  const exited = new Promise((r) => child.once("exit", () => (children.delete(child), r())));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  return new Promise((resolveStart, rejectStart) => {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolveStart({ url: m[1], stop, log: () => log });
    });
    child.once("exit", (code) => rejectStart(new Error(`node ${args.join(" ")} exited ${code}:\n${log}`)));
  });
}

/** gateArgs are the CLI arguments for a gate in front of the toy server. */
export function gateArgs({ agate, record, upstreamUrl, listen }) {
  const args = [GATE_CLI, "--agate", agate, "--mapping", MAPPING, "--deadline-ms", "5000"];
  if (listen) args.push("--listen", listen);
  if (upstreamUrl) args.push("--upstream-url", upstreamUrl);
  else args.push("--", process.execPath, TOY, "--record", record);
  return args;
}

/** connectStdio starts the gate CLI over stdio (the toy server behind it over stdio) as an MCP client would. */
export async function connectStdio(options) {
  const [command, ...rest] = [process.execPath, ...gateArgs(options)];
  const transport = new StdioClientTransport({ command, args: rest, stderr: "pipe" });
  let log = "";
  transport.stderr.on("data", (chunk) => (log += chunk));
  const client = new McpClient({ name: "agate-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, log: () => log, close: () => client.close() };
}

/** connectHttp connects an MCP client to a streamable HTTP endpoint. */
export async function connectHttp(url) {
  const client = new McpClient({ name: "agate-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** text is a tool result's first text. */
export function text(result) {
  return result.content.find((c) => c.type === "text")?.text ?? "";
}

/** caseIdIn finds the case id a refusal names. */
export function caseIdIn(result) {
  return result._meta?.["agate/decision"]?.caseId ?? /case (case_\w+)/.exec(text(result))?.[1];
}
