"""The rules of gate(), written once for the blocking and the asyncio client.

steps() is a generator that decides; the clients perform what it yields (open the case watch,
GetCase, wait for the next event, redeem) and send the results back. Neither client repeats a
rule: what to wait for, in which order to subscribe and look, when to look again, and what a
closed case means.

The order that makes waiting safe: subscribe to the tenant's case events first, THEN read the
case (an acknowledgement before the subscription is seen by the read, one after it by the
stream). The server gives no signal that the subscription is in place, and a slow consumer can
lose events (CaseEvent.dropped), so the case is also read again after 1 s, 2 s, 4 s, ... at
most every RECHECK_MAX seconds, and at once when events were dropped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Generator

from agate import errors
from agate._request import redeem_request
from agate.decision import Decision, case_state_name
from agate.v1 import agate_pb2 as pb

RECHECK_FIRST = 1.0
RECHECK_MAX = 15.0

# Verdicts whose case an approval turns into one ALLOW: gate() waits for these. DENY is never
# approved into ALLOW and SAFE_MODE is about the workflow, not this action: gate() returns them.
WAITING_VERDICTS = frozenset((pb.VERDICT_HOLD, pb.VERDICT_PARK_ITEM, pb.VERDICT_BLOCK))


@dataclasses.dataclass(frozen=True)
class OpenWatch:
    """Subscribe to WatchCases for tenant_id (closing any previous subscription). -> None."""
    tenant_id: str


@dataclasses.dataclass(frozen=True)
class GetCase:
    """Read the case. -> pb.Case; None when agate did not answer; the AgateError otherwise."""
    case_id: str


@dataclasses.dataclass(frozen=True)
class NextEvent:
    """Wait up to timeout seconds for the next CaseEvent. -> the event; None on timeout;
    WATCH_ENDED once when the stream ended (later waits just time out)."""
    timeout: float


@dataclasses.dataclass(frozen=True)
class Redeem:
    """Evaluate request (the redemption). -> Decision."""
    request: pb.EvaluateRequest


WATCH_ENDED = object()

Step = OpenWatch | GetCase | NextEvent | Redeem


def check_timeout(timeout: float | None) -> None:
    """check_timeout: gate's timeout is None (no limit) or seconds >= 0 (ValueError)."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"agate: gate timeout must be None or seconds >= 0, got {timeout!r}")


def waits(decision: Decision) -> bool:
    """waits tells whether gate() waits for decision's case to be acknowledged."""
    return decision.response.verdict in WAITING_VERDICTS and bool(decision.case_id)


def steps(first: Decision, request: pb.EvaluateRequest, timeout: float | None,
          clock: Callable[[], float] = time.monotonic) -> Generator[Step, object, Decision]:
    """steps waits for first's case to close and returns gate()'s decision.

    APPROVED: the redemption's decision (ALLOW once), with case and original set. REJECTED,
    RESOLVED, EXPIRED: first, with case set and reason saying who closed it and how. Timeout:
    first with timed_out=True (fail closed). Raises the AgateError of a GetCase that agate
    refused (other than NOT_FOUND: the case is gone, which returns first with a reason).
    """
    case_id = first.case_id
    end = math.inf if timeout is None else clock() + timeout
    interval = RECHECK_FIRST
    case: pb.Case | None = None
    subscribed = False
    while True:
        if not subscribed:
            yield OpenWatch(request.tenant_id)
            subscribed = True
        got = yield GetCase(case_id)
        if isinstance(got, errors.NotFoundError):
            return first._replace(reason=f"case {case_id} is unknown to agate now ({got.details}); "
                                         "resubmit the request with a new request_id")
        if isinstance(got, errors.AgateError):
            raise got
        if got is not None:
            case = got
        next_check = clock() + interval
        interval = min(interval * 2, RECHECK_MAX)
        # Wait for an event of this case until the next check is due.
        while case is None or case.state == pb.CASE_STATE_OPEN:
            now = clock()
            if now >= end:
                return first._replace(timed_out=True, case=case)
            if now >= next_check:
                break
            event = yield NextEvent(min(end, next_check) - now)
            if event is WATCH_ENDED:
                subscribed = False  # subscribe again at the next check
            elif event is not None:
                if event.dropped:
                    break  # our case's event may be among them: look now
                if event.case.id == case_id:
                    case = event.case
        else:
            break
    if case.state == pb.CASE_STATE_APPROVED:
        redeemed = yield Redeem(redeem_request(request, case_id))
        return redeemed._replace(case=case, original=first)
    return first._replace(case=case, reason=closing_reason(case))


def closing_reason(case: pb.Case) -> str:
    """closing_reason says how a case ended without an approval, and what to do next."""
    state = case_state_name(case.state).lower()
    last = case.history[-1] if case.history else None
    if case.state == pb.CASE_STATE_EXPIRED:
        return (f"case {case.id} expired at its SLA deadline with no decision; the request is "
                "void: resubmit it with a new request_id")
    text = f"case {case.id} was {state}"
    if last is not None and last.actor:
        text += f" by {last.actor}"
    if last is not None and last.comment:
        text += f": {last.comment}"
    return text
