// The agate.v1.Agate service as grpc-js sees it: one path and the wire codecs per method, derived
// from the descriptor that protoc-gen-es generates at build time (src/gen is not committed).

import type { ServiceDefinition } from "@grpc/grpc-js";
import { type DescMessage, type DescMethod, type MessageShape, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Agate } from "./gen/agate/v1/agate_pb.js";

/** One method of agate.v1.Agate with its wire codecs (protobuf-es messages in, Buffers out). */
export interface RpcMethod<I extends DescMessage, O extends DescMessage> {
  /** The gRPC path, e.g. "/agate.v1.Agate/Evaluate". */
  readonly path: string;
  readonly serverStreaming: boolean;
  readonly serializeRequest: (message: MessageShape<I>) => Buffer;
  readonly deserializeRequest: (bytes: Buffer) => MessageShape<I>;
  readonly serializeResponse: (message: MessageShape<O>) => Buffer;
  readonly deserializeResponse: (bytes: Buffer) => MessageShape<O>;
}

function encoder<T extends DescMessage>(schema: T): (message: MessageShape<T>) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function decoder<T extends DescMessage>(schema: T): (bytes: Buffer) => MessageShape<T> {
  return (bytes) => fromBinary(schema, bytes);
}

function rpcMethod<I extends DescMessage, O extends DescMessage>(
  method: DescMethod & { input: I; output: O },
): RpcMethod<I, O> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    serverStreaming: method.methodKind === "server_streaming",
    serializeRequest: encoder(method.input),
    deserializeRequest: decoder(method.input),
    serializeResponse: encoder(method.output),
    deserializeResponse: decoder(method.output),
  };
}

/** The methods of agate.v1.Agate, by their generated (lowerCamelCase) names. */
export const methods = {
  evaluate: rpcMethod(Agate.method.evaluate),
  acknowledge: rpcMethod(Agate.method.acknowledge),
  getCase: rpcMethod(Agate.method.getCase),
  listCases: rpcMethod(Agate.method.listCases),
  watchCases: rpcMethod(Agate.method.watchCases),
  getStats: rpcMethod(Agate.method.getStats),
} as const;

/**
 * agateServiceDefinition is agate.v1.Agate as a grpc-js ServiceDefinition, for `Server.addService`
 * (fake servers in tests) or `makeGenericClientConstructor`. Handlers receive and return
 * protobuf-es messages (`create(pb.EvaluateResponseSchema, {...})`).
 */
export const agateServiceDefinition: ServiceDefinition = Object.fromEntries(
  Object.entries(methods).map(([name, m]) => [
    name,
    {
      path: m.path,
      requestStream: false,
      responseStream: m.serverStreaming,
      originalName: name,
      requestSerialize: m.serializeRequest,
      requestDeserialize: m.deserializeRequest,
      responseSerialize: m.serializeResponse,
      responseDeserialize: m.deserializeResponse,
    },
  ]),
) as ServiceDefinition;
