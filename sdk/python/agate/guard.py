"""guard: a decorator that asks agate before a tool function runs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from agate import aio
from agate.client import Client
from agate.errors import ActionRefused
from agate.v1 import agate_pb2 as pb

# Fields guard accepts: EvaluateRequest's own (action is built from action_type and the
# Action fields; approval is gate()'s business) and Action's.
_REQUEST_FIELDS = frozenset(f.name for f in pb.EvaluateRequest.DESCRIPTOR.fields) - {
    "action", "approval", "tenant_id"}
_ACTION_FIELDS = frozenset(f.name for f in pb.Action.DESCRIPTOR.fields) - {"type"}


def guard(client: Client | aio.Client, *, action_type: str, tenant_id: Any, wait: bool = True,
          timeout: float | None = 300.0, **fields: Any) -> Callable:
    """guard decorates a tool so that agate decides each call before it runs.

    Each call builds an EvaluateRequest from the tool's arguments and asks agate: with
    wait=True (default) through client.gate (a HOLD, PARK_ITEM or BLOCK waits up to timeout
    seconds for a person's approval, then redeems it), with wait=False through
    client.evaluate. The tool runs only on ALLOW; otherwise guard raises agate.ActionRefused
    carrying the Decision (verdict, case_id, owner, agent_action, timed_out, ...). Errors of
    evaluate (agate.AgateError: the request is wrong) propagate; a tool call whose arguments
    do not fit its signature raises TypeError without asking agate.

    Args:
      client: an agate.Client for a plain function, an agate.aio.Client for an async one.
      action_type: action.type, e.g. "refund".
      tenant_id: the tenant (required).
      wait: use gate() (True) or evaluate() (False).
      timeout: how long gate() waits for a person, in seconds (None: no limit).
      **fields: any other EvaluateRequest field (request_id, agent_id, workflow_id, item_id,
        actor, model, signals, attributes, evidence) or Action field (target,
        customer_facing, irreversible, critical, amount, currency, target_tenant_id,
        requested_scopes). Each value, tenant_id's too, is a constant or a callable that
        takes the tool's arguments (a dict: parameter name -> value, defaults applied) and
        returns the value; None leaves the field out. Without request_id each call gets a
        new one.

    Example:
      @agate.guard(client, action_type="refund", tenant_id="acme",
                   item_id=lambda a: a["order_id"], amount=lambda a: a["amount"])
      def refund(order_id: str, amount: float) -> str:
          ...
      refund("order-7", 400)   # waits for finance's approval, or raises agate.ActionRefused

    Raises TypeError or ValueError at decoration time for an unknown field or a client that
    does not fit the function (async needs agate.aio.Client).
    """
    unknown = sorted(set(fields) - _REQUEST_FIELDS - _ACTION_FIELDS)
    if unknown:
        raise ValueError(f"agate.guard: unknown field(s) {', '.join(unknown)}; fields are "
                         f"{', '.join(sorted(_REQUEST_FIELDS | _ACTION_FIELDS))}")
    if not isinstance(action_type, str) or not action_type:
        raise ValueError("agate.guard: action_type is required, e.g. action_type=\"refund\"")
    if not isinstance(client, (Client, aio.Client)):
        raise TypeError(f"agate.guard: client must be an agate.Client or agate.aio.Client, not "
                        f"{type(client).__name__}")
    specs = dict(fields, tenant_id=tenant_id)

    def decorate(tool: Callable) -> Callable:
        is_async = inspect.iscoroutinefunction(tool)
        if is_async != isinstance(client, aio.Client):
            raise TypeError(f"agate.guard: {tool.__qualname__} is "
                            f"{'async' if is_async else 'not async'}: guard it with an "
                            f"{'agate.aio.Client' if is_async else 'agate.Client'}")
        signature = inspect.signature(tool)

        def request_for(call_args: tuple, call_kwargs: dict) -> dict:
            bound = signature.bind(*call_args, **call_kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            request: dict = {"action": {"type": action_type}}
            for name, spec in specs.items():
                value = spec(arguments) if callable(spec) else spec
                if value is not None:
                    (request["action"] if name in _ACTION_FIELDS else request)[name] = value
            return request

        if is_async:
            @functools.wraps(tool)
            async def guarded_async(*call_args, **call_kwargs):
                request = request_for(call_args, call_kwargs)
                decision = await (client.gate(request, timeout=timeout) if wait
                                  else client.evaluate(request))
                if not decision.allowed:
                    raise ActionRefused(decision, action_type)
                return await tool(*call_args, **call_kwargs)
            return guarded_async

        @functools.wraps(tool)
        def guarded(*call_args, **call_kwargs):
            request = request_for(call_args, call_kwargs)
            decision = (client.gate(request, timeout=timeout) if wait
                        else client.evaluate(request))
            if not decision.allowed:
                raise ActionRefused(decision, action_type)
            return tool(*call_args, **call_kwargs)
        return guarded

    return decorate
