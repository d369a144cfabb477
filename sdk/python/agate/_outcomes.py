"""The fail-closed table: what each gRPC status of an Evaluate call means for the caller.

    "answer"     agate decided (OK): the verdict is the answer, whatever it is.
    "no_answer"  agate did not decide: the client's failure mode applies (HOLD with
                 failed_closed, or ALLOW with failed_open).
    "error"      agate says the request itself is wrong: raised as an AgateError, never
                 masked as a verdict.

It is the C++ client's table (agate::client::Client::IsNoAnswer). sdk/status_outcomes.json holds
the same table for every SDK; tests/test_status_outcomes.py checks this one against it and
tests/client/status_outcomes_test.cc checks the C++ client.
"""

from __future__ import annotations

import types

import grpc

ANSWER = "answer"
NO_ANSWER = "no_answer"
ERROR = "error"

# Every grpc.StatusCode by its canonical name, in numeric order.
STATUS_OUTCOMES: types.MappingProxyType[str, str] = types.MappingProxyType({
    "OK": ANSWER,
    "CANCELLED": NO_ANSWER,
    "UNKNOWN": NO_ANSWER,
    "INVALID_ARGUMENT": ERROR,
    "DEADLINE_EXCEEDED": NO_ANSWER,
    "NOT_FOUND": ERROR,
    "ALREADY_EXISTS": ERROR,
    "PERMISSION_DENIED": ERROR,
    "RESOURCE_EXHAUSTED": NO_ANSWER,
    "FAILED_PRECONDITION": ERROR,
    "ABORTED": NO_ANSWER,
    "OUT_OF_RANGE": ERROR,
    "UNIMPLEMENTED": NO_ANSWER,
    "INTERNAL": NO_ANSWER,
    "UNAVAILABLE": NO_ANSWER,
    "DATA_LOSS": NO_ANSWER,
    "UNAUTHENTICATED": ERROR,
})

_BY_CODE = {code: STATUS_OUTCOMES[code.name] for code in grpc.StatusCode}


def outcome(code: grpc.StatusCode) -> str:
    """outcome returns ANSWER, NO_ANSWER or ERROR for a gRPC status code."""
    return _BY_CODE[code]


def is_no_answer(code: grpc.StatusCode) -> bool:
    """is_no_answer tells whether code means agate did not decide (the failure mode applies)."""
    return _BY_CODE[code] == NO_ANSWER
