"""(e) PostgreSQL restarted under load: escalations fail closed while it is away (never ALLOW),
ALLOWs go on being answered ALLOW, escalations succeed again after it, and no case a client was
told of is lost."""

import collections
import itertools
import threading
import time
import unittest

from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import Cluster, request_id, wait_for_cases, wait_until


class Load:
    """Load sends escalations (each on a new item: each must open a case) and ALLOW requests
    from several threads until stop(), keeping every outcome with the phase it was sent in."""

    def __init__(self, cluster: Cluster, tenant: str, allow_tenant: str):
        self.cluster = cluster
        self.tenant = tenant
        self.allow_tenant = allow_tenant
        self.phase = "before"
        self.lock = threading.Lock()
        self.outcomes: list[tuple[str, str, object]] = []  # (phase, kind, outcome)
        self._items = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True)
                         for kind in ("escalate", "escalate", "escalate", "allow")]
        for t in self._threads:
            t.start()

    def _loop(self, kind: str) -> None:
        while not self._stop.is_set():
            phase = self.phase
            if kind == "escalate":
                request = support.block_request(self.tenant, item_id=f"item-{next(self._items)}",
                                                request_id=request_id())
            else:
                request = support.allow_request(self.allow_tenant, request_id=request_id())
            outcome = self.cluster.evaluate(request)
            with self.lock:
                self.outcomes.append((phase, kind, outcome))
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def count(self, phase: str, kind: str) -> int:
        with self.lock:
            return sum(1 for p, k, _ in self.outcomes if p == phase and k == kind)


class DatabaseRestartTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def test_escalations_fail_closed_while_the_database_restarts_and_recover_after(self):
        cluster = self.cluster
        tenant, allow_tenant = support.new_tenant(), support.new_tenant()
        load = Load(cluster, tenant, allow_tenant)
        try:
            wait_until(lambda: load.count("before", "escalate") >= 30,
                       "30 escalations answered before the restart")
            load.phase = "restart"
            cluster.restart_postgres()
            load.phase = "after"
            # Every replica opens cases again (its next transaction reconnects).
            for r in cluster.replicas:
                wait_until(lambda r=r: cluster.evaluate(support.block_request(
                    tenant, item_id=f"probe-{r.name}-{request_id()}"), r).answered,
                    f"{r.name} answers an escalation after the restart")
            wait_until(lambda: load.count("after", "escalate") >= 30,
                       "30 escalations sent after the restart")
        finally:
            load.stop()

        counts = collections.Counter((p, k, o.verdict if o.answered else o.code.name)
                                     for p, k, o in load.outcomes)
        report = "\n".join(f"{p} {k} {v}: {n}" for (p, k, v), n in sorted(counts.items()))
        print(report)
        for phase, kind, o in load.outcomes:
            if kind == "allow":
                # ALLOW never waits on the database.
                self.assertTrue(o.allowed, f"{phase}: {o}\n{report}")
            else:
                self.assertFalse(o.allowed, f"{phase}: an escalation was allowed: {o}")
                self.assertFalse(o.error, f"{phase}: {o}\n{report}")
                if o.answered:
                    self.assertEqual(o.response.verdict, pb.VERDICT_BLOCK, o)
                    self.assertTrue(o.response.case_id, o)
        # The restart was seen: escalations failed closed while the database was away.
        self.assertTrue(any(o.failed_closed for p, k, o in load.outcomes
                            if k == "escalate" and p in ("restart", "after")), report)
        self.assertTrue(any(o.answered for p, k, o in load.outcomes
                            if k == "escalate" and p == "after"), report)

        # Nothing lost: every case a client was told of, on every replica.
        told = {o.response.case_id for _, k, o in load.outcomes if k == "escalate" and o.answered}
        for r in cluster.replicas:
            wait_for_cases(r, told, lambda c: c.state == pb.CASE_STATE_OPEN, "is OPEN")


if __name__ == "__main__":
    unittest.main()
