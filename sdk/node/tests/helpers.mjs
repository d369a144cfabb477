// Shared fixtures for the @agate/client tests (not a test file: node --test runs *.test.mjs).
import { createServer } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { agateServiceDefinition } from "../dist/index.js";

/** The brief's example requests (proto3 JSON, snake_case as `agate eval` reads it). */
export function blockRequest(requestId, itemId = "order-7") {
  return {
    request_id: requestId,
    tenant_id: "acme",
    workflow_id: "refunds",
    item_id: itemId,
    action: { type: "refund", amount: 400 },
  };
}

export function allowRequest(requestId) {
  return {
    request_id: requestId,
    tenant_id: "acme",
    action: { type: "send_reply", customer_facing: true },
    model: { confidence: 0.93 },
  };
}

/** A TCP port on which nothing listens (it was free a moment ago). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * startFake serves agate.v1.Agate in this process with the given handlers (grpc-js style, on
 * protobuf-es messages); unimplemented methods answer UNIMPLEMENTED. Every call's metadata is
 * recorded in `calls` as {method, metadata}.
 */
export async function startFake(handlers, credentials = grpc.ServerCredentials.createInsecure()) {
  const server = new grpc.Server();
  const calls = [];
  const impl = {};
  for (const name of Object.keys(agateServiceDefinition)) {
    const handler = handlers[name];
    impl[name] = (call, callback) => {
      calls.push({ method: name, metadata: call.metadata.getMap(), peerCertificate: call.getAuthContext?.() });
      if (handler) return handler(call, callback);
      const error = { code: grpc.status.UNIMPLEMENTED, details: `${name} is not faked` };
      if (callback) callback(error);
      else call.emit("error", error);
    };
  }
  server.addService(agateServiceDefinition, impl);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    target: `127.0.0.1:${port}`,
    calls,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
    forceStop: () => server.forceShutdown(),
  };
}

/** approve acknowledges a case as the financial lane's owner (development mode: by metadata). */
export function approve(client, caseId, comment = "receipt checked") {
  return client.acknowledge(caseId, "approve", { approver: "finance-approver", comment });
}
