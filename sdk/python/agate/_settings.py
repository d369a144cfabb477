"""Client settings shared by agate.Client and agate.aio.Client: target, deadline, fail mode,
TLS and the bearer token. Everything is checked once, when the client is built."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Callable
from typing import Union

import grpc

# A down PDP must fail fast, not back off for seconds between reconnection attempts (the
# C++ client's channel arguments).
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)

Metadata = tuple[tuple[str, str], ...]
Token = Union[str, Callable[[], str], None]


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS: how the client verifies agate and, for mutual TLS, proves who it is.

    Attributes:
      ca: PEM file of the certificate authorities to trust; None trusts the system's roots.
      cert: PEM file of the client certificate chain (mutual TLS); needs key.
      key: PEM file of the client certificate's private key; needs cert.
      server_name: the name agate's certificate must carry when it is not the target's host
        (e.g. a SPIFFE-less test certificate for "localhost" served on 127.0.0.1).

    The files are read when the client is built; a missing file raises FileNotFoundError then.

    Example:
      agate.Client("agate.internal:7878", tls=agate.TLS(ca="ca.pem", cert="agent.pem",
                                                        key="agent.key"))
    """

    ca: str | os.PathLike | None = None
    cert: str | os.PathLike | None = None
    key: str | os.PathLike | None = None
    server_name: str | None = None

    def __post_init__(self):
        if (self.cert is None) != (self.key is None):
            raise ValueError("agate.TLS: cert and key go together (mutual TLS needs both the "
                             "certificate chain and its private key)")

    def credentials(self) -> grpc.ChannelCredentials:
        """credentials reads the files into grpc channel credentials."""
        def read(path):
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()
        return grpc.ssl_channel_credentials(root_certificates=read(self.ca),
                                            private_key=read(self.key),
                                            certificate_chain=read(self.cert))


@dataclasses.dataclass(frozen=True)
class Settings:
    """Settings: a client's checked configuration (see agate.Client for the meaning)."""

    target: str
    deadline: float
    fail_closed: bool
    credentials: grpc.ChannelCredentials | None
    options: tuple
    token: Token

    def metadata(self) -> Metadata | None:
        """metadata is the call metadata every call carries: the bearer token, if any (a
        callable token is called here and checked: ValueError)."""
        token = self.token
        if token is None:
            return None
        if callable(token):
            token = _checked_token(token())
        return (("authorization", "Bearer " + token),)


def make_settings(target: str, deadline: float, failure_mode: str, tls: TLS | None,
                  token: Token, options=()) -> Settings:
    """make_settings checks a client's arguments; ValueError/TypeError say what is wrong."""
    if not isinstance(target, str) or not target:
        raise ValueError("agate.Client: target is required: 'host:port' or 'unix:/path'")
    if (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
            or not math.isfinite(deadline) or deadline <= 0):
        raise ValueError(f"agate.Client: deadline must be a positive number of seconds, got "
                         f"{deadline!r}")
    if failure_mode not in ("closed", "open"):
        raise ValueError(f"agate.Client: failure_mode must be 'closed' (no answer means HOLD) or "
                         f"'open' (no answer means ALLOW), got {failure_mode!r}")
    if tls is not None and not isinstance(tls, TLS):
        raise TypeError("agate.Client: tls must be an agate.TLS(ca=..., cert=..., key=...)")
    if token is not None and not callable(token):
        _checked_token(token)
        if tls is None and not is_local(target):
            raise ValueError(
                f"agate.Client: a bearer token to {target} without TLS would cross the network in "
                "clear text: pass tls=agate.TLS(...) or use a loopback or unix: target")
    channel_options = list(_CHANNEL_OPTIONS)
    if tls is not None and tls.server_name:
        channel_options.append(("grpc.ssl_target_name_override", tls.server_name))
    channel_options.extend(options)
    return Settings(target=target, deadline=float(deadline), fail_closed=failure_mode == "closed",
                    credentials=tls.credentials() if tls is not None else None,
                    options=tuple(channel_options), token=token)


def _checked_token(token) -> str:
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        raise ValueError("agate.Client: token must be a non-empty string without spaces (sent as "
                         "'authorization: Bearer <token>'); pass the token itself, not the header")
    return token


def is_local(target: str) -> bool:
    """is_local tells whether target stays on this machine (a unix socket or loopback)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix):]
            break
    host = target
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
