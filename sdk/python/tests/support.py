"""Test support: the real agate-server as a child process, small in-process gRPC servers that
misbehave on purpose, and test certificates.

Environment (set by sdk/python/CMakeLists.txt under ctest; the defaults are for running by hand):
  AGATE_SERVER       agate-server to test against (default /opt/agate-baseline/bin/agate-server)
  AGATE_SOURCE_DIR   the repository root (default: three levels above this file)
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

import agate
from agate.v1 import agate_pb2 as pb

SOURCE_DIR = Path(os.environ.get("AGATE_SOURCE_DIR") or Path(__file__).resolve().parents[3])
AGATE_SERVER = os.environ.get("AGATE_SERVER") or "/opt/agate-baseline/bin/agate-server"
MATRIX = SOURCE_DIR / "deploy/examples/escalation-matrix.yaml"
TESTDATA = Path(__file__).resolve().parent / "testdata"
# Long enough for a loaded 2-core machine; waits end as soon as their condition holds.
START_TIMEOUT = 60.0
WAIT = 60.0
# The deadline tests use for real calls: far above a decision's cost, so only a stopped or
# missing server makes it pass.
DEADLINE = 10.0
# The financial lane's owner in the bundled matrix.
APPROVER = "finance-approver"

_LISTENING = re.compile(r"listening on (\S+)")


class ServerProcess:
    """ServerProcess runs a server binary that logs "listening on ADDR" on stderr, until stop().

    address is the ADDR it logged (port 0 resolved). A context manager.
    """

    def __init__(self, argv: list[str]):
        self.address: str | None = None
        self._stderr: list[str] = []
        self._listening = threading.Event()
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._listening.wait(START_TIMEOUT) or self.address is None:
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start listening: {''.join(self._stderr)}")

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            self._stderr.append(line)
            match = _LISTENING.search(line)
            if match and self.address is None:
                self.address = match.group(1)
                self._listening.set()
        self._process.stderr.close()
        self._listening.set()  # it exited

    def pause(self) -> None:
        """pause stops the process (SIGSTOP): connections stay open, nothing answers.

        It returns once every thread is stopped: the signal only stops each thread when it next
        runs, and on a busy machine one could still answer a call sent right after the kill.
        """
        self._process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        task_dir = f"/proc/{self._process.pid}/task"
        while time.monotonic() < deadline:
            states = []
            for tid in os.listdir(task_dir):
                with open(f"{task_dir}/{tid}/stat", encoding="utf-8") as f:
                    stat = f.read()
                states.append(stat[stat.rindex(")") + 2])
            if all(state == "T" for state in states):
                return
            time.sleep(0.01)
        raise RuntimeError(f"agate-server (pid {self._process.pid}) did not stop")

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(START_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class AgateServer(ServerProcess):
    """AgateServer: agate-server on matrix with the memory store."""

    def __init__(self, listen: str = "127.0.0.1:0", matrix: Path = MATRIX,
                 binary: str = AGATE_SERVER):
        super().__init__([binary, "--matrix", str(matrix), "--listen", listen,
                          "--store", "memory"])


def new_tenant() -> str:
    """new_tenant: a tenant of its own for one test (cases and watches don't mix)."""
    return "t-" + uuid.uuid4().hex[:12]


def block_request(tenant: str, **extra) -> dict:
    """block_request: a $400 refund, BLOCKed by the financial lane."""
    return dict({"tenant_id": tenant, "workflow_id": "refunds", "item_id": "order-7",
                 "action": {"type": "refund", "amount": 400}}, **extra)


def allow_request(tenant: str, **extra) -> dict:
    """allow_request: a confident customer-facing reply: ALLOW."""
    return dict({"tenant_id": tenant, "action": {"type": "send_reply", "customer_facing": True},
                 "model": {"confidence": 0.93}}, **extra)


def acknowledge_when_open(client: agate.Client, tenant: str, decision: str = "approve",
                          comment: str = "") -> concurrent.futures.Future:
    """acknowledge_when_open acknowledges, from another thread, the first case of tenant to
    open (as a person would while gate() waits). The future holds the acknowledged case."""
    def run() -> pb.Case:
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            cases = client.list_cases(tenant_id=tenant, state=pb.CASE_STATE_OPEN).cases
            if cases:
                return client.acknowledge(cases[0].id, decision, comment=comment,
                                          approver=APPROVER)
            time.sleep(0.05)
        raise TimeoutError(f"no open case of tenant {tenant} within {WAIT}s")
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = executor.submit(run)
    executor.shutdown(wait=False)
    return future


class FakeAgate:
    """FakeAgate: an in-process gRPC server whose Evaluate is evaluate(request, context) (and
    Acknowledge acknowledge(request, context), if given).

    For what the real server does not do on demand: fail with any status code, stall, echo
    the call's metadata, or speak TLS. A context manager; stop() ends it.
    """

    def __init__(self, evaluate: Callable[[pb.EvaluateRequest, grpc.ServicerContext],
                                          pb.EvaluateResponse],
                 server_credentials: grpc.ServerCredentials | None = None,
                 address: str = "127.0.0.1:0", acknowledge: Callable | None = None):
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        methods = {"Evaluate": grpc.unary_unary_rpc_method_handler(
            evaluate, request_deserializer=pb.EvaluateRequest.FromString,
            response_serializer=pb.EvaluateResponse.SerializeToString)}
        if acknowledge is not None:
            methods["Acknowledge"] = grpc.unary_unary_rpc_method_handler(
                acknowledge, request_deserializer=pb.AcknowledgeRequest.FromString,
                response_serializer=pb.AcknowledgeResponse.SerializeToString)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("agate.v1.Agate", methods),))
        if server_credentials is None:
            port = self._server.add_insecure_port(address)
        else:
            port = self._server.add_secure_port(address, server_credentials)
        host = address.rsplit(":", 1)[0]
        self.address = f"{host}:{port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> FakeAgate:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Certificates:
    """Certificates: a throwaway CA, a server certificate for "localhost" and a client
    certificate with CN "agent-7", made with the openssl command. A context manager."""

    def __init__(self):
        if shutil.which("openssl") is None:
            raise FileNotFoundError("openssl")
        self.dir = Path(tempfile.mkdtemp(prefix="agate-certs-"))
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                      "-subj", "/CN=agate test CA")
        self._issue("server", "/CN=localhost", "subjectAltName=DNS:localhost\n")
        self._issue("client", "/CN=agent-7", "extendedKeyUsage=clientAuth\n")

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True)

    def _issue(self, name: str, subject: str, extensions: str) -> None:
        (self.dir / f"{name}.ext").write_text(extensions)
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                      "-extfile", f"{name}.ext")

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def __enter__(self) -> Certificates:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
