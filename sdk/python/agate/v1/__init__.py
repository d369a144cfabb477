"""agate.v1: the stubs generated from proto/agate/v1/agate.proto (agate_pb2, agate_pb2_grpc).

They are generated at build time (sdk/python/CMakeLists.txt) or on the first ``import agate``
(agate/_codegen.py), never committed.
"""
