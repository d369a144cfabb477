"""What agate.Client and agate.aio.Client share: settings, counters, and turning a gRPC
outcome of Evaluate into a Decision or an AgateError by the fail-closed table."""

from __future__ import annotations

import grpc

from agate import _outcomes, errors
from agate._settings import Settings, TLS, Token, make_settings
from agate.decision import Counters, Decision, Tally, no_answer_response
from agate.v1 import agate_pb2 as pb

_DECISIONS = {"approve": pb.DECISION_APPROVE, "reject": pb.DECISION_REJECT,
              "resolve": pb.DECISION_RESOLVE}


class ClientCore:
    """ClientCore holds a client's settings and counters; not used directly."""

    def __init__(self, target: str, *, deadline: float = 0.2, failure_mode: str = "closed",
                 tls: TLS | None = None, token: Token = None, options=()):
        self._settings: Settings = make_settings(target, deadline, failure_mode, tls, token,
                                                 options)
        self._tally = Tally()
        # The per-call metadata: computed once unless the token is a callable.
        if callable(token):
            self._metadata = self._settings.metadata
        else:
            metadata = self._settings.metadata()
            self._metadata = lambda: metadata

    @property
    def target(self) -> str:
        """target: where agate is ("host:port" or "unix:/path")."""
        return self._settings.target

    @property
    def deadline(self) -> float:
        """deadline: the per-call deadline of evaluate, in seconds."""
        return self._settings.deadline

    @property
    def failure_mode(self) -> str:
        """failure_mode: "closed" (no answer means HOLD) or "open" (no answer means ALLOW)."""
        return "closed" if self._settings.fail_closed else "open"

    def counters(self) -> Counters:
        """counters returns what evaluate calls ended in so far (ok, escalated, error,
        failed_closed, failed_open)."""
        return self._tally.snapshot()

    def _call_metadata(self, extra: tuple = ()) -> tuple | None:
        base = self._metadata()
        if not extra:
            return base
        return (base or ()) + extra

    def _answered(self, response: pb.EvaluateResponse, request_id: str) -> Decision:
        self._tally.answered(response.verdict)
        return Decision(response, request_id)

    def _not_answered(self, error: grpc.RpcError, request_id: str) -> Decision:
        """_not_answered applies the fail-closed table to an Evaluate that failed: the failure
        mode's Decision for "no answer", else raises the AgateError."""
        code = error.code()
        if not _outcomes.is_no_answer(code):
            self._tally.refused()
            raise errors.error_for(code, error.details(), "Evaluate") from None
        fail_closed = self._settings.fail_closed
        self._tally.no_answer(fail_closed)
        return Decision(no_answer_response(fail_closed, code.name, error.details() or ""),
                        request_id)


def acknowledge_request(case_id: str, decision: str, comment: str) -> pb.AcknowledgeRequest:
    """acknowledge_request builds an AcknowledgeRequest; ValueError for an unknown decision."""
    if decision not in _DECISIONS:
        raise ValueError(f"agate: decision must be one of {', '.join(_DECISIONS)}, got "
                         f"{decision!r}")
    return pb.AcknowledgeRequest(case_id=case_id, decision=_DECISIONS[decision], comment=comment)


def approver_metadata(approver: str | None) -> tuple:
    """approver_metadata: the x-agate-approver metadata of development mode (--auth none)."""
    return (("x-agate-approver", approver),) if approver else ()


def rpc_error(error: grpc.RpcError, method: str) -> errors.AgateError:
    """rpc_error is the AgateError for a failed call other than Evaluate (no failure mode)."""
    return errors.error_for(error.code(), error.details(), method)
