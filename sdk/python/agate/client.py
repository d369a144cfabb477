"""agate.Client: the blocking client of agate's policy decision point, failing closed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping

import grpc

from agate import _gate, _outcomes
from agate._core import ClientCore, acknowledge_request, approver_metadata, rpc_error
from agate._request import to_request
from agate.decision import Decision
from agate.v1 import agate_pb2 as pb
from agate.v1 import agate_pb2_grpc as pb_grpc

# Calls other than Evaluate (acknowledge, get_case, ...) wait this long by default: they write
# to agate's store or serve people, not the agent's hot path.
CALL_TIMEOUT = 5.0


class Client(ClientCore):
    """Client asks agate whether an action may go ahead, failing closed as the C++ client does.

    Args:
      target: "host:port" or "unix:/path" of agate-server.
      deadline: per-call deadline of evaluate, in seconds (default 0.2). Calls never wait for
        a server that is not ready: an unreachable agate fails at once.
      failure_mode: what evaluate returns when agate does not answer: "closed" (default) a HOLD
        with failed_closed=True, or "open" an ALLOW with failed_open=True.
      tls: agate.TLS(ca=..., cert=..., key=...) for TLS or mutual TLS; None is plaintext.
      token: a bearer token sent as "authorization: Bearer <token>" on every call, or a
        callable returning the current one (called per call: refresh it there; what it
        raises, the call raises). Without tls it is allowed only to a loopback or unix:
        target.
      options: extra grpc channel options, e.g. (("grpc.max_receive_message_length", n),).

    evaluate's contract (sdk/status_outcomes.json, the same table as every agate client):
      * agate answered: the Decision, whatever the verdict (a refusal is a normal result).
      * agate did not answer (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL,
        UNKNOWN, CANCELLED, ABORTED, UNIMPLEMENTED, DATA_LOSS): the failure mode's Decision,
        reason saying what happened. Never raises.
      * agate said the request is wrong (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
        FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE, UNAUTHENTICATED): raises the
        matching agate.AgateError subclass. A caller's bug is never masked as a verdict.

    Thread-safe: share one Client per target across threads (it multiplexes one channel).
    Close it (or use it as a context manager) to release the channel.

    Example:
      with agate.Client("127.0.0.1:7878") as client:
          d = client.evaluate({"tenant_id": "acme", "action": {"type": "refund", "amount": 400}})
          if not d.allowed:
              print(d.verdict, d.case_id, d.owner, d.agent_action)
    """

    def __init__(self, target: str, *, deadline: float = 0.2, failure_mode: str = "closed",
                 tls=None, token=None, options=()):
        super().__init__(target, deadline=deadline, failure_mode=failure_mode, tls=tls,
                         token=token, options=options)
        s = self._settings
        if s.credentials is not None:
            self._channel = grpc.secure_channel(s.target, s.credentials, options=s.options)
        else:
            self._channel = grpc.insecure_channel(s.target, options=s.options)
        self._stub = pb_grpc.AgateStub(self._channel)
        self._evaluate = self._stub.Evaluate

    @property
    def stub(self) -> pb_grpc.AgateStub:
        """stub: the generated AgateStub on the client's channel, for raw calls. Pass a timeout
        and the bearer token's metadata yourself."""
        return self._stub

    def evaluate(self, request: Mapping | pb.EvaluateRequest) -> Decision:
        """evaluate asks agate for a decision on one proposed action.

        request: a dict in proto3 JSON names (snake_case or lowerCamelCase), e.g.
          {"tenant_id": "acme", "item_id": "order-7", "action": {"type": "refund", "amount": 400}},
          or an agate.v1.agate_pb2.EvaluateRequest. Without a request_id it gets a new one
          (decision.request_id): send the same request with that id again to get the same
          decision (agate's idempotency), e.g. after a failed-closed timeout.

        Returns the Decision; raises AgateError only when agate says the request is wrong (see
        the class comment), InvalidArgumentError too for a dict that is no EvaluateRequest.
        """
        message = to_request(request)
        try:
            response = self._evaluate(message, timeout=self._settings.deadline,
                                      metadata=self._metadata())
        except grpc.RpcError as e:
            return self._not_answered(e, message.request_id)
        return self._answered(response, message.request_id)

    def gate(self, request: Mapping | pb.EvaluateRequest, *,
             timeout: float | None = 300.0) -> Decision:
        """gate evaluates request and, if a person must decide, waits for them.

        * ALLOW, DENY, SAFE_MODE, or the failure mode's decision: returned at once.
        * HOLD, PARK_ITEM, BLOCK: waits up to timeout seconds (None: no limit) for the case to
          be acknowledged, watching the tenant's case events. APPROVED: redeems the approval
          (evaluates the same action again with request_id + ":redeem" and approval.case_id)
          and returns that decision: ALLOW, once. REJECTED, RESOLVED, EXPIRED: returns the
          original refusal, its reason saying who closed the case. Timeout: returns the original
          refusal with timed_out=True (fail closed); the case stays open.

        decision.case is the case as last seen. With the same request_id, a second gate() after
        a timeout or a crash resumes: the same case, and a redemption that already happened is
        replayed rather than spent twice.

        Raises what evaluate raises, and the AgateError of a GetCase agate refuses (e.g.
        PERMISSION_DENIED when the caller may not read cases). Blocks the calling thread; uses
        one helper thread while it waits.
        """
        _gate.check_timeout(timeout)
        message = to_request(request)
        first = self.evaluate(message)
        if not _gate.waits(first):
            return first
        steps = _gate.steps(first, message, timeout)
        watch: _Watch | None = None
        result = None
        try:
            while True:
                try:
                    step = steps.send(result)
                except StopIteration as done:
                    return done.value
                if isinstance(step, _gate.NextEvent):
                    result = watch.next(step.timeout)
                elif isinstance(step, _gate.GetCase):
                    result = self._get_case_or_error(step.case_id)
                elif isinstance(step, _gate.OpenWatch):
                    if watch is not None:
                        watch.close()
                    watch = _Watch(self._stub, step.tenant_id, self._metadata())
                    result = None
                else:
                    result = self.evaluate(step.request)
        finally:
            if watch is not None:
                watch.close()

    def _get_case_or_error(self, case_id: str):
        try:
            return self._stub.GetCase(pb.GetCaseRequest(case_id=case_id),
                                      timeout=max(self._settings.deadline, 1.0),
                                      metadata=self._metadata()).case
        except grpc.RpcError as e:
            return None if _outcomes.is_no_answer(e.code()) else rpc_error(e, "GetCase")

    def acknowledge(self, case_id: str, decision: str = "approve", *, comment: str = "",
                    approver: str | None = None, timeout: float = CALL_TIMEOUT) -> pb.Case:
        """acknowledge records a person's decision on an open case and returns the case.

        decision: "approve", "reject" or "resolve". approver: in development mode (the server's
        --auth none) the identity to act as, sent as x-agate-approver metadata; with real
        authentication the token or certificate decides and approver is not needed.

        Raises PermissionDeniedError (not the lane's owner, backup or fallback), NotFoundError,
        FailedPreconditionError (the case is closed), AgateUnavailable (no answer).
        """
        try:
            return self._stub.Acknowledge(acknowledge_request(case_id, decision, comment),
                                          timeout=timeout,
                                          metadata=self._call_metadata(approver_metadata(approver))
                                          ).case
        except grpc.RpcError as e:
            raise rpc_error(e, "Acknowledge") from None

    def get_case(self, case_id: str, *, timeout: float = CALL_TIMEOUT) -> pb.Case:
        """get_case returns one case; raises NotFoundError if agate does not know it."""
        try:
            return self._stub.GetCase(pb.GetCaseRequest(case_id=case_id), timeout=timeout,
                                      metadata=self._metadata()).case
        except grpc.RpcError as e:
            raise rpc_error(e, "GetCase") from None

    def list_cases(self, *, state: int = pb.CASE_STATE_UNSPECIFIED, lane: str = "",
                   tenant_id: str = "", owner: str = "", page_size: int = 0, page_token: str = "",
                   timeout: float = CALL_TIMEOUT) -> pb.ListCasesResponse:
        """list_cases returns one page of cases, newest first (state: a pb.CASE_STATE_* value)."""
        try:
            return self._stub.ListCases(
                pb.ListCasesRequest(state=state, lane=lane, tenant_id=tenant_id, owner=owner,
                                    page_size=page_size, page_token=page_token),
                timeout=timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise rpc_error(e, "ListCases") from None

    def watch_cases(self, *, tenant_id: str = "", lane: str = "") -> Iterator[pb.CaseEvent]:
        """watch_cases streams case events from now on (no deadline).

        Returns the grpc call: iterate it for CaseEvents, call .cancel() to stop. Iteration
        raises grpc.RpcError when the stream ends abnormally.
        """
        return self._stub.WatchCases(pb.WatchCasesRequest(tenant_id=tenant_id, lane=lane),
                                     metadata=self._metadata())

    def stats(self, *, timeout: float = CALL_TIMEOUT) -> pb.GetStatsResponse:
        """stats returns the per-trigger escalation statistics."""
        try:
            return self._stub.GetStats(pb.GetStatsRequest(), timeout=timeout,
                                       metadata=self._metadata())
        except grpc.RpcError as e:
            raise rpc_error(e, "GetStats") from None

    def close(self) -> None:
        """close releases the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"agate.Client({self.target!r}, failure_mode={self.failure_mode!r})"


class _Watch:
    """_Watch: one tenant's case events, read by a daemon thread into a queue (for gate)."""

    def __init__(self, stub: pb_grpc.AgateStub, tenant_id: str, metadata):
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # The call starts here, before gate reads the case.
        self._call = stub.WatchCases(pb.WatchCasesRequest(tenant_id=tenant_id), metadata=metadata)
        threading.Thread(target=self._read, name="agate-gate-watch", daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._call:
                self._events.put(event)
        except grpc.RpcError:
            pass  # cancelled by close, or the stream broke: gate subscribes again
        self._events.put(_gate.WATCH_ENDED)

    def next(self, timeout: float):
        try:
            return self._events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def close(self) -> None:
        self._call.cancel()
