"""agate.aio.Client: the asyncio client (grpc.aio), with agate.Client's API and contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import grpc
import grpc.aio

from agate import _gate, _outcomes
from agate._core import ClientCore, acknowledge_request, approver_metadata, rpc_error
from agate._request import to_request
from agate.client import CALL_TIMEOUT
from agate.decision import Decision
from agate.v1 import agate_pb2 as pb
from agate.v1 import agate_pb2_grpc as pb_grpc

__all__ = ["Client"]


class Client(ClientCore):
    """Client is agate.Client for asyncio: the same arguments, the same fail-closed contract
    (see agate.Client), coroutines instead of blocking calls.

    Build it inside the event loop that uses it (grpc.aio binds its channel to that loop) and
    use it from that loop only. Close it with ``await client.close()`` or ``async with``.

    Example:
      async with agate.aio.Client("unix:/run/agate.sock") as client:
          decision = await client.gate({"tenant_id": "acme", "item_id": "order-7",
                                        "action": {"type": "refund", "amount": 400}},
                                       timeout=600)
          if decision.allowed:
              await issue_refund()
    """

    def __init__(self, target: str, *, deadline: float = 0.2, failure_mode: str = "closed",
                 tls=None, token=None, options=()):
        super().__init__(target, deadline=deadline, failure_mode=failure_mode, tls=tls,
                         token=token, options=options)
        s = self._settings
        if s.credentials is not None:
            self._channel = grpc.aio.secure_channel(s.target, s.credentials, options=s.options)
        else:
            self._channel = grpc.aio.insecure_channel(s.target, options=s.options)
        self._stub = pb_grpc.AgateStub(self._channel)
        self._evaluate = self._stub.Evaluate

    @property
    def stub(self) -> pb_grpc.AgateStub:
        """stub: the generated AgateStub on the client's grpc.aio channel, for raw calls."""
        return self._stub

    async def evaluate(self, request: Mapping | pb.EvaluateRequest) -> Decision:
        """evaluate: see agate.Client.evaluate."""
        message = to_request(request)
        try:
            response = await self._evaluate(message, timeout=self._settings.deadline,
                                            metadata=self._metadata())
        except grpc.RpcError as e:
            return self._not_answered(e, message.request_id)
        return self._answered(response, message.request_id)

    async def gate(self, request: Mapping | pb.EvaluateRequest, *,
                   timeout: float | None = 300.0) -> Decision:
        """gate: see agate.Client.gate. Waits without blocking the loop (one task reads the
        case events meanwhile); cancelling it stops the wait and leaves the case open."""
        _gate.check_timeout(timeout)
        message = to_request(request)
        first = await self.evaluate(message)
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
                    result = await watch.next(step.timeout)
                elif isinstance(step, _gate.GetCase):
                    result = await self._get_case_or_error(step.case_id)
                elif isinstance(step, _gate.OpenWatch):
                    if watch is not None:
                        watch.close()
                    watch = _Watch(self._stub, step.tenant_id, self._metadata())
                    result = None
                else:
                    result = await self.evaluate(step.request)
        finally:
            if watch is not None:
                watch.close()

    async def _get_case_or_error(self, case_id: str):
        try:
            response = await self._stub.GetCase(pb.GetCaseRequest(case_id=case_id),
                                                timeout=max(self._settings.deadline, 1.0),
                                                metadata=self._metadata())
        except grpc.RpcError as e:
            return None if _outcomes.is_no_answer(e.code()) else rpc_error(e, "GetCase")
        return response.case

    async def acknowledge(self, case_id: str, decision: str = "approve", *, comment: str = "",
                          approver: str | None = None, timeout: float = CALL_TIMEOUT) -> pb.Case:
        """acknowledge: see agate.Client.acknowledge."""
        try:
            response = await self._stub.Acknowledge(
                acknowledge_request(case_id, decision, comment), timeout=timeout,
                metadata=self._call_metadata(approver_metadata(approver)))
        except grpc.RpcError as e:
            raise rpc_error(e, "Acknowledge") from None
        return response.case

    async def get_case(self, case_id: str, *, timeout: float = CALL_TIMEOUT) -> pb.Case:
        """get_case: see agate.Client.get_case."""
        try:
            response = await self._stub.GetCase(pb.GetCaseRequest(case_id=case_id),
                                                timeout=timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise rpc_error(e, "GetCase") from None
        return response.case

    async def list_cases(self, *, state: int = pb.CASE_STATE_UNSPECIFIED, lane: str = "",
                         tenant_id: str = "", owner: str = "", page_size: int = 0,
                         page_token: str = "",
                         timeout: float = CALL_TIMEOUT) -> pb.ListCasesResponse:
        """list_cases: see agate.Client.list_cases."""
        try:
            return await self._stub.ListCases(
                pb.ListCasesRequest(state=state, lane=lane, tenant_id=tenant_id, owner=owner,
                                    page_size=page_size, page_token=page_token),
                timeout=timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise rpc_error(e, "ListCases") from None

    def watch_cases(self, *, tenant_id: str = "", lane: str = "") -> AsyncIterator[pb.CaseEvent]:
        """watch_cases streams case events from now on: ``async for event in call``; call
        .cancel() to stop."""
        return self._stub.WatchCases(pb.WatchCasesRequest(tenant_id=tenant_id, lane=lane),
                                     metadata=self._metadata())

    async def stats(self, *, timeout: float = CALL_TIMEOUT) -> pb.GetStatsResponse:
        """stats: see agate.Client.stats."""
        try:
            return await self._stub.GetStats(pb.GetStatsRequest(), timeout=timeout,
                                             metadata=self._metadata())
        except grpc.RpcError as e:
            raise rpc_error(e, "GetStats") from None

    async def close(self) -> None:
        """close releases the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"agate.aio.Client({self.target!r}, failure_mode={self.failure_mode!r})"


class _Watch:
    """_Watch: one tenant's case events, read by a task into a queue (for gate)."""

    def __init__(self, stub: pb_grpc.AgateStub, tenant_id: str, metadata):
        self._events: asyncio.Queue = asyncio.Queue()
        self._call = stub.WatchCases(pb.WatchCasesRequest(tenant_id=tenant_id), metadata=metadata)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self._call:
                self._events.put_nowait(event)
        except (grpc.RpcError, asyncio.CancelledError):
            pass  # cancelled by close, or the stream broke: gate subscribes again
        self._events.put_nowait(_gate.WATCH_ENDED)

    async def next(self, timeout: float):
        try:
            return await asyncio.wait_for(self._events.get(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        self._call.cancel()
        self._reader.cancel()
