// @agate/client/testing: run a real agate-server (or agate-noop-server) for a test or a benchmark.
//
// Every server started here is killed when stop() is called, and at the latest when this process
// exits, so a failing test leaves no server behind.
//
// Example:
//   const server = await startAgateServer();          // AGATE_SERVER or the baseline build
//   const client = new Client(server.target);
//   ...
//   await server.stop();

import { type ChildProcess, spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is sdk/node/dist/testing.js inside it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The bundled escalation matrix, deploy/examples/escalation-matrix.yaml. */
export const EXAMPLE_MATRIX = resolve(REPO_ROOT, "deploy", "examples", "escalation-matrix.yaml");

/** Where agate-server is when AGATE_SERVER is not set (a stable build, for running by hand). */
export const DEFAULT_SERVER_BINARY = "/opt/agate-baseline/bin/agate-server";

/** How to start a server. */
export interface ServerOptions {
  /** The binary; default `$AGATE_SERVER`, else {@link DEFAULT_SERVER_BINARY}. */
  binary?: string;
  /**
   * The command-line arguments; default `--matrix <matrix> --listen 127.0.0.1:0 --store memory`.
   * They must listen on one TCP port (port 0 lets the server pick a free one) or one Unix socket.
   */
  args?: string[];
  /** The matrix for the default arguments; default {@link EXAMPLE_MATRIX}. */
  matrix?: string;
  /** How long to wait for "listening on HOST:PORT" (default 30000 ms: the machine may be busy). */
  startTimeoutMs?: number;
}

/** A running server. */
export interface RunningServer {
  /** "127.0.0.1:PORT" (or "unix:PATH" when it listens there), for `new Client(target)`. */
  readonly target: string;
  /** The TCP port; 0 on a Unix socket. */
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the server wrote to stderr so far (its log). */
  log(): string;
  /** stop kills the server (SIGKILL, also when it is SIGSTOPped) and resolves once it has exited. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/**
 * startAgateServer starts the server and resolves once it listens; it rejects, with the server's
 * log, if the process exits first or does not listen within `startTimeoutMs`.
 */
export function startAgateServer(options: ServerOptions = {}): Promise<RunningServer> {
  const binary = options.binary ?? process.env.AGATE_SERVER ?? DEFAULT_SERVER_BINARY;
  const args = options.args ?? [
    "--matrix",
    options.matrix ?? EXAMPLE_MATRIX,
    "--listen",
    "127.0.0.1:0",
    "--store",
    "memory",
  ];
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  killAllOnExit();
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  live.add(child);
  let stderr = "";
  const exited = new Promise<void>((resolveExit) => {
    child.once("exit", () => {
      live.delete(child);
      resolveExit();
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  return new Promise<RunningServer>((resolveStart, rejectStart) => {
    let started = false;
    const fail = (why: string): void => {
      if (started) return;
      started = true;
      clearTimeout(timer);
      void stop().then(() => rejectStart(new Error(`${binary} ${args.join(" ")}: ${why}\n${stderr}`)));
    };
    const timer = setTimeout(() => fail(`did not listen within ${startTimeoutMs} ms`), startTimeoutMs);
    child.once("error", (e) => fail(e.message));
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      if (started) return;
      const m = /listening on (?:(127\.0\.0\.1|\[::1\]|localhost):(\d+)|(unix:\S+))/.exec(stderr);
      if (!m) return;
      started = true;
      clearTimeout(timer);
      const port = m[3] ? 0 : Number(m[2]);
      resolveStart({
        target: m[3] ?? `${m[1]}:${port}`,
        port,
        process: child,
        log: () => stderr,
        stop,
      });
    });
  });
}
