"""Decision: what agate decided about one action, as the SDK returns it; Counters."""

from __future__ import annotations

import dataclasses
import datetime
import threading

from agate.v1 import agate_pb2 as pb

# "ALLOW", "PARK_ITEM", ... by enum number.
_VERDICT_NAMES = {v.number: v.name.removeprefix("VERDICT_") for v in pb.Verdict.DESCRIPTOR.values}
_CASE_STATE_NAMES = {v.number: v.name.removeprefix("CASE_STATE_")
                     for v in pb.CaseState.DESCRIPTOR.values}


def verdict_name(verdict: int) -> str:
    """verdict_name is the short name of a Verdict number ("ALLOW", "HOLD", ...)."""
    return _VERDICT_NAMES.get(verdict) or f"VERDICT_{verdict}"


def case_state_name(state: int) -> str:
    """case_state_name is the short name of a CaseState number ("OPEN", "APPROVED", ...)."""
    return _CASE_STATE_NAMES.get(state) or f"CASE_STATE_{state}"


class Decision:
    """Decision: agate's answer to one Evaluate (or the client's failure mode), read-only.

    It wraps the EvaluateResponse message (``response``) and reads its fields on access, so
    building one costs nothing on the hot path. ``verdict`` is the short name: "ALLOW",
    "PARK_ITEM", "HOLD", "SAFE_MODE", "BLOCK" or "DENY". Only ALLOW lets the action go ahead
    (``allowed``); every other verdict comes with ``agent_action``, what to do meanwhile.

    When agate did not answer, the client made the decision: HOLD with ``failed_closed`` (or
    ALLOW with ``failed_open``), ``reason`` saying why, no case_id.

    gate() adds what happened while it waited: ``case`` (the case as last seen), ``timed_out``
    (it gave up waiting: the verdict is the original refusal), and on a redemption ``original``
    (the decision that opened the case).

    Thread-safe (immutable); do not modify ``response``.
    """

    __slots__ = ("response", "request_id", "timed_out", "case", "original", "_reason")

    def __init__(self, response: pb.EvaluateResponse, request_id: str, *, timed_out: bool = False,
                 case: pb.Case | None = None, original: Decision | None = None,
                 reason: str | None = None):
        #: The EvaluateResponse message (synthetic when failed_closed or failed_open).
        self.response = response
        #: The request_id that was sent (generated when the request had none); evaluating the
        #: same request with it again returns the same decision (idempotency).
        self.request_id = request_id
        #: gate() only: it stopped waiting for the case at its timeout.
        self.timed_out = timed_out
        #: gate() only: the case as last seen (its state, history, current owner), else None.
        self.case = case
        #: gate() only, on a redemption: the non-ALLOW decision that opened the case.
        self.original = original
        self._reason = reason

    def _replace(self, **changes) -> Decision:
        fields = {"timed_out": self.timed_out, "case": self.case, "original": self.original,
                  "reason": self._reason}
        fields.update(changes)
        return Decision(self.response, self.request_id, **fields)

    @property
    def verdict(self) -> str:
        """verdict: "ALLOW", "PARK_ITEM", "HOLD", "SAFE_MODE", "BLOCK" or "DENY"."""
        return verdict_name(self.response.verdict)

    @property
    def allowed(self) -> bool:
        """allowed: True only for ALLOW; the action may go ahead."""
        return self.response.verdict == pb.VERDICT_ALLOW

    @property
    def reason(self) -> str:
        """reason: why the verdict is what it is when fired does not say it (a failure mode, a
        redemption, a refused redemption; from gate(), how the case ended)."""
        return self.response.reason if self._reason is None else self._reason

    @property
    def case_id(self) -> str:
        """case_id: the case opened or joined for the winning lane; "" for ALLOW."""
        return self.response.case_id

    @property
    def case_state(self) -> str:
        """case_state: gate() only, the case's last seen state ("APPROVED", "REJECTED",
        "EXPIRED", "RESOLVED", "OPEN"), else ""."""
        return case_state_name(self.case.state) if self.case is not None else ""

    @property
    def lane(self) -> str:
        """lane: the winning lane ("" for ALLOW)."""
        return self.response.lane

    @property
    def owner(self) -> str:
        """owner: the winning lane's primary owner."""
        return self.response.owner

    @property
    def backup(self) -> str:
        """backup: the winning lane's backup owner."""
        return self.response.backup

    @property
    def sla_deadline(self) -> datetime.datetime | None:
        """sla_deadline: when the owner must have answered (UTC), None for ALLOW."""
        if not self.response.HasField("sla_deadline"):
            return None
        return self.response.sla_deadline.ToDatetime(tzinfo=datetime.timezone.utc)

    @property
    def agent_action(self) -> str:
        """agent_action: what the agent must do meanwhile."""
        return self.response.agent_action

    @property
    def operator_action(self) -> str:
        """operator_action: what the operator on shift does first."""
        return self.response.operator_action

    @property
    def missing_evidence(self) -> list[str]:
        """missing_evidence: evidence the winning lane requires that the request lacked."""
        return list(self.response.missing_evidence)

    @property
    def triggers(self) -> list[str]:
        """triggers: ids of the fired triggers, in matrix order (details in response.fired)."""
        return [f.trigger_id for f in self.response.fired]

    @property
    def decision_id(self) -> str:
        """decision_id: agate's id of this decision ("" when the client decided)."""
        return self.response.decision_id

    @property
    def matrix_version(self) -> str:
        """matrix_version: the version of the matrix that decided."""
        return self.response.matrix_version

    @property
    def replayed(self) -> bool:
        """replayed: this is the stored answer to an earlier request with the same request_id."""
        return self.response.replayed

    @property
    def failed_closed(self) -> bool:
        """failed_closed: agate did not answer and the client held the action (HOLD)."""
        return self.response.failed_closed

    @property
    def failed_open(self) -> bool:
        """failed_open: agate did not answer and the client let the action through (ALLOW)."""
        return self.response.failed_open

    def __repr__(self) -> str:
        parts = [f"verdict={self.verdict!r}"]
        for name in ("case_id", "lane", "owner", "reason"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value!r}")
        for name in ("failed_closed", "failed_open", "replayed", "timed_out"):
            if getattr(self, name):
                parts.append(f"{name}=True")
        if self.case is not None:
            parts.append(f"case_state={self.case_state!r}")
        return f"Decision({', '.join(parts)})"


def no_answer_response(fail_closed: bool, code_name: str, details: str) -> pb.EvaluateResponse:
    """no_answer_response is the client's own decision when agate did not answer (the C++
    client's words, so logs read the same)."""
    return pb.EvaluateResponse(
        verdict=pb.VERDICT_HOLD if fail_closed else pb.VERDICT_ALLOW,
        failed_closed=fail_closed, failed_open=not fail_closed,
        reason=f"agate did not answer ({code_name}: {details}); failing "
               f"{'closed' if fail_closed else 'open'}")


@dataclasses.dataclass(frozen=True)
class Counters:
    """Counters: what a client's evaluate calls ended in, since it was built (as the C++ client).

    Attributes:
      ok: answers (any verdict).
      escalated: answers whose verdict is not ALLOW.
      error: requests agate refused as wrong (raised as AgateError).
      failed_closed: no answer: the client returned HOLD.
      failed_open: no answer: the client returned ALLOW.
    """

    ok: int = 0
    escalated: int = 0
    error: int = 0
    failed_closed: int = 0
    failed_open: int = 0


class Tally:
    """Tally counts a client's outcomes; thread-safe."""

    __slots__ = ("_lock", "_ok", "_escalated", "_error", "_failed_closed", "_failed_open")

    def __init__(self):
        self._lock = threading.Lock()
        self._ok = self._escalated = self._error = self._failed_closed = self._failed_open = 0

    def answered(self, verdict: int) -> None:
        with self._lock:
            self._ok += 1
            if verdict != pb.VERDICT_ALLOW:
                self._escalated += 1

    def refused(self) -> None:
        with self._lock:
            self._error += 1

    def no_answer(self, fail_closed: bool) -> None:
        with self._lock:
            if fail_closed:
                self._failed_closed += 1
            else:
                self._failed_open += 1

    def snapshot(self) -> Counters:
        with self._lock:
            return Counters(self._ok, self._escalated, self._error, self._failed_closed,
                            self._failed_open)
