// @agate/mcp-gate: put agate in front of any MCP server's tools/call.
//
// Example (in-process; the agate-mcp-gate command does the same from flags):
//   const gate = new ToolGate(new Client("127.0.0.1:7878"), loadMapping("tools.yaml"));
//   const endpoint = await serveHttp({ gate, upstream: { command: "node", args: ["server.js"] }, listen: "127.0.0.1:8808" });

export { type Bridge, type BridgeOptions, startBridge } from "./bridge.js";
export { type HttpEndpoint, type SessionStarter, serveStreamableHttp } from "./http.js";
export {
  ArgumentError,
  type Mapping,
  MappingError,
  type ToolRule,
  type UnmappedPolicy,
  canonicalJson,
  loadMapping,
  parseMapping,
  ruleFor,
  toEvaluateRequest,
} from "./mapping.js";
export { type ProxyOptions, serveHttp, serveStdio } from "./proxy.js";
export { type GateOutcome, META_KEY, ToolGate, type ToolGateOptions } from "./tool_gate.js";
export { type Upstream, upstreamTransport } from "./upstream.js";
