"""The multi-replica harness: a throwaway PostgreSQL, agate-servers sharing it, and a client that
spreads calls over them.

Cluster starts PostgreSQL with tests/testing/postgres.sh in a temporary directory, creates a
fresh database, and starts N agate-servers on it (--store postgres, each its own --data-dir and
--replica-id, --listen on 127.0.0.1 port 0, development mode). Cluster.evaluate sends a request
to the replicas in turn (or to the one named) and returns an Outcome: the answer, or the status
of a call that was not answered. A replica killed with kill() is started again with restart()
(on a new port; the cluster's client for it follows).

close() stops everything and removes the directory. If the test process dies without it (a
ctest timeout kills it with SIGKILL), a detached reaper kills the replicas it started, stops
PostgreSQL and removes the directory.

Environment (tests/replicas/CMakeLists.txt sets them under ctest):
  AGATE_SERVER      agate-server (read by sdk/python/tests/support.py)
  AGATE_CLI         the agate CLI (verify-log)
  AGATE_SOURCE_DIR  the repository root
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

import agate
from agate._request import to_request
from agate.v1 import agate_pb2 as pb
from tests import support

SOURCE_DIR = support.SOURCE_DIR
POSTGRES_SH = SOURCE_DIR / "tests/testing/postgres.sh"
AGATE_CLI = os.environ.get("AGATE_CLI") or str(Path(support.AGATE_SERVER).parents[1] /
                                                  "client/agate")
TESTDATA = Path(__file__).resolve().parent / "testdata"
# An Evaluate's deadline: far above a decision's cost on a loaded 2-core machine under ASan,
# with replicas taking turns at the database's lock; only a replica that cannot answer misses it.
DEADLINE = 30.0
# How long a condition may take to hold (a feed poll is 50 ms; this is for a loaded machine).
WAIT = support.WAIT
# The status codes of a call that was not answered, which the client turns into HOLD.
FAILED_CLOSED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A replica's log with one of these failed a sanitizer check (the asan build).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome:
    """Outcome is what one Evaluate call ended in: the response, or the status it failed with."""
    replica: str
    request: pb.EvaluateRequest
    response: pb.EvaluateResponse | None = None
    code: grpc.StatusCode | None = None
    details: str = ""

    @property
    def answered(self) -> bool:
        return self.response is not None

    @property
    def allowed(self) -> bool:
        return self.response is not None and self.response.verdict == pb.VERDICT_ALLOW

    @property
    def failed_closed(self) -> bool:
        """failed_closed: not answered with UNAVAILABLE or DEADLINE_EXCEEDED (the client's HOLD)."""
        return self.code in FAILED_CLOSED

    @property
    def error(self) -> bool:
        """error: refused with any other status, which no test here expects."""
        return self.response is None and not self.failed_closed

    @property
    def verdict(self) -> str:
        if self.response is None:
            return f"no answer ({self.code.name})"
        return pb.Verdict.Name(self.response.verdict)

    def __str__(self) -> str:
        what = self.verdict if self.answered else f"{self.code.name}: {self.details}"
        return f"{self.request.request_id} via {self.replica}: {what}"


class _Process(support.ServerProcess):
    """_Process is support.ServerProcess that can also die of SIGKILL."""

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
        self._process.wait()
        self._reader.join(support.START_TIMEOUT)

    def stderr(self) -> str:
        return "".join(self._stderr)

    def exit_code(self) -> int | None:
        return self._process.poll()


class Replica:
    """Replica is one agate-server of the cluster: its name, data dir, process and client."""

    def __init__(self, cluster: Cluster, index: int):
        self.index = index
        self.name = f"r{index + 1}"
        self.data_dir = cluster.work / self.name
        self._cluster = cluster
        self._process: _Process | None = None
        # True while the process may have ended: kill() or stop() was called.
        self._ending = False
        # The client of the current process; a restarted replica gets a new one (a new port).
        # Old clients stay open until close(): a thread may still be calling through one.
        self.client: agate.Client | None = None
        self._clients: list[agate.Client] = []

    def start(self) -> None:
        argv = [self._cluster.binary, "--matrix", str(self._cluster.matrix),
                "--listen", "127.0.0.1:0", "--auth", "none",
                "--store", "postgres", "--postgres-url", self._cluster.url,
                "--replica-id", self.name, "--data-dir", str(self.data_dir),
                *self._cluster.extra_args]
        self._process = _Process(argv)
        self._ending = False
        self._cluster._write_pids()
        client = agate.Client(self._process.address, deadline=DEADLINE)
        self._clients.append(client)
        self.client = client

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive else None

    def kill(self) -> None:
        """kill sends SIGKILL and waits for the process to end."""
        if self._process is not None:
            self.check_alive()
            self._ending = True
            self._process.kill()
            self._check(exit_code=None)
        self._cluster._write_pids()

    def restart(self) -> None:
        """restart starts the replica again on the same data dir (after kill or stop)."""
        if self.alive:
            raise RuntimeError(f"replica {self.name} is still running")
        self.check_alive()
        self.start()

    def stop(self) -> None:
        """stop ends the replica with SIGTERM (a clean shutdown, exit status 0)."""
        if self._process is not None and not self._ending:
            if self._process.alive():
                self._ending = True
                self._process.stop()
                self._check(exit_code=0)
            else:
                self.check_alive()
        self._cluster._write_pids()

    def _check(self, exit_code: int | None) -> None:
        """_check adds to the cluster's problems a process that ended on its own or with
        another status than exit_code (None: any), or whose log has a sanitizer's report."""
        p = self._process
        problems = []
        if not self._ending:
            problems.append(f"exited on its own with status {p.exit_code()}")
        elif exit_code is not None and p.exit_code() != exit_code:
            problems.append(f"exited with status {p.exit_code()}, not {exit_code}")
        markers = [m for m in SANITIZER_MARKERS if m in p.stderr()]
        if markers:
            problems.append(f"its log has {', '.join(markers)}")
        if problems:
            self._cluster.problems.append(
                f"replica {self.name} (pid {p.pid}): {'; '.join(problems)}; its log ends:\n"
                f"{p.stderr()[-6000:]}")

    def check_alive(self) -> None:
        """check_alive records a replica that ended although nobody stopped or killed it."""
        if self._process is not None and not self._ending and not self._process.alive():
            self._check(exit_code=None)
            self._ending = True

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def evaluate(self, request: dict | pb.EvaluateRequest,
                 deadline: float = DEADLINE) -> Outcome:
        """evaluate sends request (a dict gets a new request_id if it has none) to this replica."""
        message = to_request(request)
        client = self.client
        try:
            response = client.stub.Evaluate(message, timeout=deadline)
        except grpc.RpcError as e:
            return Outcome(self.name, message, code=e.code(), details=e.details() or "")
        return Outcome(self.name, message, response=response)


class Cluster:
    """Cluster is a throwaway PostgreSQL and `replicas` agate-servers sharing one database.

    matrix: the escalation matrix every replica serves; extra_args: more agate-server flags;
    binary: the server (test_harness.py gives a stand-in).
    Not thread-safe for kill/restart; evaluate and the replicas' clients are.
    """

    def __init__(self, replicas: int = 3, matrix: Path = support.MATRIX,
                 extra_args: Iterable[str] = (), binary: str = support.AGATE_SERVER):
        self.matrix = matrix
        self.binary = binary
        self.extra_args = list(extra_args)
        self.work = Path(tempfile.mkdtemp(prefix="agate-replicas-"))
        # PostgreSQL runs as the postgres user: it must reach its directory below this one.
        os.chmod(self.work, 0o755)
        self.pg_dir = self.work / "pg"
        self._pids = self.work / "pids"
        self.replicas: list[Replica] = []
        # What went wrong with a replica's process (close() raises them).
        self.problems: list[str] = []
        self._turn = itertools.count()
        self._closed = False
        self._start_reaper()
        try:
            url = self._postgres("start").strip()
            self._create_database(url, "agate")
            self.url = url.rsplit("/", 1)[0] + "/agate"
            self.replicas = [Replica(self, i) for i in range(replicas)]
            for r in self.replicas:
                r.start()
        except BaseException:
            self.close()
            raise

    # --- PostgreSQL ----------------------------------------------------------------------------

    def _postgres(self, command: str) -> str:
        done = subprocess.run(["bash", str(POSTGRES_SH), command, str(self.pg_dir)],
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"postgres.sh {command} {self.pg_dir} failed "
                               f"({done.returncode}): {done.stderr}")
        return done.stdout

    @staticmethod
    def _create_database(url: str, name: str) -> None:
        done = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c",
                               f"CREATE DATABASE {name}"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE {name} on {url} failed: {done.stderr}")

    def restart_postgres(self) -> None:
        """restart_postgres stops PostgreSQL (fast: connections are cut) and starts it again on
        the same port and data."""
        self._postgres("restart")

    # --- the reaper ----------------------------------------------------------------------------

    def _start_reaper(self) -> None:
        """_start_reaper leaves a detached shell that, if this process dies while the work
        directory still exists, kills the replicas listed in it, stops PostgreSQL and removes
        the directory. Detached twice over (setsid, then its parent exits) so that ctest, which
        kills a timed-out test's process tree, does not kill it too."""
        script = f"""
(
  while kill -0 {os.getpid()} 2>/dev/null && [ -d '{self.work}' ]; do sleep 1; done
  if [ -d '{self.work}' ]; then
    for pid in $(cat '{self._pids}' 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    bash '{POSTGRES_SH}' stop '{self.pg_dir}' >/dev/null 2>&1
    rm -rf '{self.work}'
  fi
) &
"""
        subprocess.run(["setsid", "bash", "-c", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def _write_pids(self) -> None:
        pids = [str(r.pid) for r in self.replicas if r.pid is not None]
        tmp = self._pids.with_suffix(".tmp")
        tmp.write_text("\n".join(pids) + "\n")
        tmp.replace(self._pids)

    # --- calls ---------------------------------------------------------------------------------

    def next_replica(self) -> Replica:
        """next_replica: the replicas in turn (thread-safe)."""
        return self.replicas[next(self._turn) % len(self.replicas)]

    def evaluate(self, request: dict | pb.EvaluateRequest, replica: Replica | None = None,
                 deadline: float = DEADLINE) -> Outcome:
        """evaluate sends request to replica, or to the next replica in turn."""
        return (replica or self.next_replica()).evaluate(request, deadline)

    def wait_ready(self) -> None:
        """wait_ready waits until every replica answers GetStats."""
        for r in self.replicas:
            wait_until(lambda r=r: r.client.stats() is not None, f"replica {r.name} answers")

    def verify_logs(self) -> dict[str, subprocess.CompletedProcess]:
        """verify_logs runs `agate verify-log DIR/decisions` for each replica's data dir."""
        return {r.name: subprocess.run([AGATE_CLI, "verify-log", str(r.data_dir / "decisions")],
                                       capture_output=True, text=True, timeout=120)
                for r in self.replicas}

    def close(self) -> None:
        """close stops the replicas and PostgreSQL and removes the work directory; then raises
        AssertionError if a replica ended on its own, exited with a status other than 0 on
        SIGTERM, or logged a sanitizer's report."""
        if self._closed:
            return
        self._closed = True
        try:
            for r in self.replicas:
                r.check_alive()
            for r in self.replicas:
                r.stop()
                r.close_clients()
        finally:
            try:
                self._postgres("stop")
            finally:
                shutil.rmtree(self.work, ignore_errors=True)
        if self.problems:
            raise AssertionError("\n".join(self.problems))


def wait_until(condition: Callable[[], bool], what: str, timeout: float | None = None) -> None:
    """wait_until polls condition until it is true; AssertionError naming `what` after timeout
    (default WAIT).

    A condition that raises agate.AgateError (a replica not answering yet, a case it has not
    heard of yet) counts as false; the last error is in the message.
    """
    timeout = WAIT if timeout is None else timeout
    end = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if condition():
                return
        except agate.AgateError as e:
            last_error = e
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout}s: {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(0.05)


def wait_for_cases(replica: Replica, case_ids: Iterable[str],
                   condition: Callable[[pb.Case], bool] = lambda case: True,
                   what: str = "exists") -> None:
    """wait_for_cases waits until replica's GetCase of every case id meets condition (NOT_FOUND
    counts as not yet); the AssertionError names the cases that did not, up to 10."""
    pending = set(case_ids)

    def check() -> bool:
        for case_id in list(pending):
            try:
                if condition(replica.client.get_case(case_id)):
                    pending.discard(case_id)
            except agate.AgateError:
                pass
        return not pending

    try:
        wait_until(check, f"{replica.name}: every case {what}")
    except AssertionError as e:
        raise AssertionError(f"{e}; {len(pending)} did not: {sorted(pending)[:10]}") from None


def list_cases(client: agate.Client, tenant: str,
               state: int = pb.CASE_STATE_UNSPECIFIED) -> list[pb.Case]:
    """list_cases: every case of tenant in state, all pages."""
    cases: list[pb.Case] = []
    token = ""
    while True:
        page = client.list_cases(tenant_id=tenant, state=state, page_size=500, page_token=token)
        cases.extend(page.cases)
        token = page.next_page_token
        if not token:
            return cases


def timeouts(case: pb.Case) -> list[str]:
    """timeouts: the case's "timeout:..." transitions, in order."""
    return [t.event for t in case.history if t.event.startswith("timeout:")]


def events(case: pb.Case) -> list[str]:
    return [t.event for t in case.history]


def in_threads(n: int, work: Callable[[int], object]) -> list:
    """in_threads runs work(0..n-1) in n threads released at once; their results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
