"""Building EvaluateRequest messages from what callers pass, and the redemption request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import grpc
from google.protobuf import json_format

from agate.errors import InvalidArgumentError
from agate.v1 import agate_pb2 as pb

# Appended to the original request_id for the redemption gate() sends: a new request (the
# server's idempotency would replay the original refusal otherwise) that is still the same on
# every retry of the same gate (so a retried redemption replays its ALLOW instead of spending a
# second approval).
REDEEM_SUFFIX = ":redeem"


def new_request_id() -> str:
    """new_request_id is a fresh idempotency key (a UUID4)."""
    return str(uuid.uuid4())


def to_request(request: Mapping | pb.EvaluateRequest) -> pb.EvaluateRequest:
    """to_request turns a dict (proto3 JSON names, snake_case or lowerCamelCase) or an
    EvaluateRequest into the message to send, with a request_id.

    A message that has a request_id is returned as is; otherwise a copy gets a new one (the
    caller's message is never modified). Raises InvalidArgumentError for a dict that is not an
    EvaluateRequest (unknown field, wrong type), TypeError for anything else.
    """
    if isinstance(request, pb.EvaluateRequest):
        if request.request_id:
            return request
        message = pb.EvaluateRequest()
        message.CopyFrom(request)
    elif isinstance(request, Mapping):
        message = pb.EvaluateRequest()
        try:
            json_format.ParseDict(request, message)
        except (json_format.ParseError, TypeError, ValueError) as e:
            raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"request is not an EvaluateRequest: {e}",
                                       "Evaluate") from None
    else:
        raise TypeError(f"agate: a request is a dict (proto3 JSON names) or an "
                        f"agate.v1.agate_pb2.EvaluateRequest, not {type(request).__name__}")
    if not message.request_id:
        message.request_id = new_request_id()
    return message


def redeem_request(original: pb.EvaluateRequest, case_id: str) -> pb.EvaluateRequest:
    """redeem_request is the request that redeems an approved case for original's action.

    The same action under a new request_id (original's + ":redeem"), approval.case_id set, and
    no signals: they were counted with the original request and nothing new was observed since.
    """
    message = pb.EvaluateRequest()
    message.CopyFrom(original)
    message.request_id = original.request_id + REDEEM_SUFFIX
    message.ClearField("signals")
    message.approval.case_id = case_id
    return message
