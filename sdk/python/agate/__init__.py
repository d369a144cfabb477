"""agate: the Python SDK of agate, the policy decision point for AI agents.

Before each consequential action, ask agate; it answers ALLOW, PARK_ITEM, HOLD, SAFE_MODE,
BLOCK or DENY, with who owns the situation and what to do meanwhile. A client fails closed:
when agate does not answer, the verdict is HOLD.

    import agate

    client = agate.Client("127.0.0.1:7878")
    decision = client.gate({"tenant_id": "acme", "item_id": "order-7",
                            "action": {"type": "refund", "amount": 400}}, timeout=600)
    if decision.allowed:
        ...  # approved by a person, redeemed once

API: Client (blocking) and aio.Client (asyncio) with evaluate, gate, acknowledge, get_case,
list_cases, watch_cases, stats; guard (a decorator for tool functions); Decision; TLS;
AgateError and its subclasses; ActionRefused; STATUS_OUTCOMES (the fail-closed table). The
generated messages are agate.v1.agate_pb2 (e.g. agate.v1.agate_pb2.EvaluateRequest).
"""

from agate import _codegen

# The stubs are generated at build time; a checkout imported before any build generates them
# here (or raises ImportError saying what to do).
_codegen.ensure_stubs()

from agate._outcomes import STATUS_OUTCOMES  # noqa: E402
from agate._settings import TLS  # noqa: E402
from agate.client import Client  # noqa: E402
from agate.decision import Counters, Decision  # noqa: E402
from agate.errors import (  # noqa: E402
    ActionRefused, AgateError, AgateUnavailable, AlreadyExistsError, FailedPreconditionError,
    InvalidArgumentError, NotFoundError, OutOfRangeError, PermissionDeniedError,
    UnauthenticatedError)
from agate import aio  # noqa: E402
from agate.guard import guard  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ActionRefused", "AgateError", "AgateUnavailable", "AlreadyExistsError", "Client",
    "Counters", "Decision", "FailedPreconditionError", "InvalidArgumentError", "NotFoundError",
    "OutOfRangeError", "PermissionDeniedError", "STATUS_OUTCOMES", "TLS",
    "UnauthenticatedError", "aio", "guard",
]
