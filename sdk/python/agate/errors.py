"""Exceptions of the agate SDK.

Two kinds of failure stay apart, as in the C++ client:

* A refusing verdict (HOLD, BLOCK, DENY, ...) is a normal result, a Decision. Only guard()
  turns it into an exception, ActionRefused, because a decorated tool has no other way to say
  "not executed".
* AgateError means a call did not produce a decision. Evaluate raises it only when agate says
  the request itself is wrong (the "error" codes of the fail-closed table); when agate does not
  answer, Evaluate returns the failure mode's verdict instead. The other calls (acknowledge,
  get_case, ...) have no failure mode and raise AgateError for every non-OK status:
  AgateUnavailable for the "no answer" codes.

Every message says what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from agate.decision import Decision


class AgateError(Exception):
    """AgateError: a call to agate failed with a non-OK gRPC status.

    Attributes:
      code: the grpc.StatusCode.
      details: agate's own message (for INVALID_ARGUMENT it names the field, e.g.
        "model.confidence: must be in [0, 1], got 1.5").
      method: the RPC, e.g. "Evaluate".
    """

    # What to do about this code; subclasses override it.
    hint = "see the details"

    def __init__(self, code: grpc.StatusCode, details: str, method: str):
        self.code = code
        self.details = details
        self.method = method
        super().__init__(f"agate {method}: {code.name}: {details} ({self.hint})")


class InvalidArgumentError(AgateError):
    """The request is malformed; the details name the field. Nothing was decided."""
    hint = "fix the named field and send it again; the request was not evaluated"


class AlreadyExistsError(AgateError):
    """The request_id was already decided for a request with other contents."""
    hint = ("use a new request_id for a new or changed request; reuse a request_id only to "
            "repeat the very same request")


class NotFoundError(AgateError):
    """No such case (or it belongs to a tenant the caller may not see)."""
    hint = "check the case_id: it must come from an EvaluateResponse of the same server and tenant"


class PermissionDeniedError(AgateError):
    """The caller's identity may not do this (e.g. acknowledge a case outside its lane)."""
    hint = ("the caller's identity may not do this: check the token or client certificate the "
            "client sends, and the lane's owner, backup and fallback")


class FailedPreconditionError(AgateError):
    """The call does not fit the current state (e.g. acknowledging a closed case)."""
    hint = "the case is not in a state that allows this: get_case() shows its state and history"


class OutOfRangeError(AgateError):
    """A value is outside what agate accepts."""
    hint = "bring the named value into range"


class UnauthenticatedError(AgateError):
    """agate could not verify who is calling."""
    hint = ("agate requires credentials: pass Client(token=...) or tls=agate.TLS(cert=..., "
            "key=...) as the server is configured")


class AgateUnavailable(AgateError):
    """agate did not answer (unreachable, overloaded, deadline passed, ...).

    Evaluate never raises it (it fails closed or open instead); the other calls do.
    """
    hint = "agate did not answer: check that agate-server runs at the target, then retry"


_BY_CODE: dict[grpc.StatusCode, type[AgateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def error_for(code: grpc.StatusCode, details: str | None, method: str) -> AgateError:
    """error_for builds the AgateError subclass for a non-OK status code."""
    return _BY_CODE.get(code, AgateUnavailable)(code, details or "", method)


class ActionRefused(Exception):
    """ActionRefused: a guarded tool was not executed because agate did not ALLOW it.

    Attributes:
      decision: the Decision (verdict, case_id, owner, reason, agent_action, ...). When it
        failed closed, decision.failed_closed is True; when guard waited in vain,
        decision.timed_out is True.
    """

    def __init__(self, decision: Decision, action: str):
        self.decision = decision
        text = f"agate refused {action or 'the action'}: {decision.verdict}"
        reason = decision.reason
        if not reason and decision.timed_out:
            reason = "nobody decided before the timeout; the case stays open"
        if decision.case_id:
            case = "" if decision.case_id in reason else f"case {decision.case_id}, "
            text += f" ({case}owner {decision.owner})"
        if reason:
            text += f": {reason}"
        if decision.agent_action and decision.case_state in ("", "OPEN"):
            text += f"; meanwhile: {decision.agent_action}"
        super().__init__(text)
