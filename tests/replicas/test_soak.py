"""(d) kill -9 of replicas at random under mixed load: nothing a client was told is lost, no scope
has two open cases, no approval is redeemed twice, and each replica's decision log verifies.

AGATE_REPLICAS_SOAK_SECONDS (default 60) is how long the load and the kills go on.
"""

import collections
import os
import random
import threading
import time
import unittest

import grpc

import agate
from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import FAILED_CLOSED, Cluster, list_cases, request_id, wait_for_cases

SECONDS = float(os.environ.get("AGATE_REPLICAS_SOAK_SECONDS") or 60)
ITEMS = 40  # escalations pick one of these items: cases are opened and joined


class Load:
    """Load drives mixed traffic at the cluster from several threads until stop() and keeps what
    each client was told."""

    def __init__(self, cluster: Cluster, tenant: str, allow_tenant: str):
        self.cluster = cluster
        self.tenant = tenant
        self.allow_tenant = allow_tenant
        self.lock = threading.Lock()
        self.told: dict[str, dict] = {}             # case id -> the request that was answered
        self.approved: set[str] = set()             # acknowledgements answered APPROVED
        self.redeemed = collections.Counter()       # case id -> redemptions answered ALLOW
        self.errors: list[str] = []                 # calls answered with an unexpected status
        self.wrong: list[str] = []                  # answers that break the rules
        self.counts = collections.Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(f,), daemon=True)
                         for f in (self._escalate, self._escalate, self._allow,
                                   self._acknowledge, self._redeem)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _loop(self, step) -> None:
        rng = random.Random()
        while not self._stop.is_set():
            try:
                step(rng)
            except Exception as e:  # a bug in the test itself: fail with it
                with self.lock:
                    self.errors.append(f"{step.__name__}: {type(e).__name__}: {e}")
                return

    def _record(self, kind: str, outcome) -> bool:
        """_record counts outcome; False unless it was answered."""
        with self.lock:
            if outcome.answered:
                self.counts[f"{kind} answered"] += 1
                return True
            self.counts[f"{kind} {outcome.code.name}"] += 1
            if outcome.error:
                self.errors.append(f"{kind}: {outcome}")
        return False

    def _escalate(self, rng: random.Random) -> None:
        request = support.block_request(self.tenant, item_id=f"item-{rng.randrange(ITEMS)}",
                                        request_id=request_id())
        outcome = self.cluster.evaluate(request)
        if not self._record("escalate", outcome):
            return
        with self.lock:
            if outcome.response.verdict != pb.VERDICT_BLOCK or not outcome.response.case_id:
                self.wrong.append(f"escalation not BLOCKed with a case: {outcome}")
            else:
                self.told[outcome.response.case_id] = request

    def _allow(self, rng: random.Random) -> None:
        outcome = self.cluster.evaluate(support.allow_request(self.allow_tenant,
                                                              request_id=request_id()))
        if self._record("allow", outcome) and not outcome.allowed:
            with self.lock:
                self.wrong.append(f"an ALLOW request was not allowed: {outcome}")
        time.sleep(0.005)

    def _acknowledge(self, rng: random.Random) -> None:
        with self.lock:
            candidates = [c for c in self.told if c not in self.approved]
        if not candidates:
            time.sleep(0.05)
            return
        case_id = rng.choice(candidates)
        replica = self.cluster.next_replica()
        try:
            case = replica.client.acknowledge(case_id, "approve", approver=support.APPROVER,
                                              timeout=10)
        except agate.AgateError as e:
            with self.lock:
                self.counts[f"ack {e.code.name}"] += 1
                # FAILED_PRECONDITION: approved by an earlier ack whose answer a kill lost.
                if e.code not in FAILED_CLOSED and e.code != grpc.StatusCode.FAILED_PRECONDITION:
                    self.errors.append(f"acknowledge {case_id} via {replica.name}: {e}")
            return
        finally:
            time.sleep(0.05)  # a person's pace: cases stay open a while and get joined
        with self.lock:
            self.counts["ack answered"] += 1
            if case.state == pb.CASE_STATE_APPROVED:
                self.approved.add(case_id)
            else:
                self.wrong.append(f"acknowledged {case_id}, got {pb.CaseState.Name(case.state)}")

    def _redeem(self, rng: random.Random) -> None:
        with self.lock:
            candidates = sorted(self.approved)
        if not candidates:
            time.sleep(0.05)
            return
        case_id = rng.choice(candidates)
        with self.lock:
            request = dict(self.told[case_id], request_id=request_id(),
                           approval={"case_id": case_id})
        outcome = self.cluster.evaluate(request)
        if not self._record("redeem", outcome):
            return
        with self.lock:
            if outcome.allowed:
                self.redeemed[case_id] += 1
            elif outcome.response.case_id:
                # Refused (already redeemed): the action opened or joined a new case.
                self.told[outcome.response.case_id] = request
            else:
                self.wrong.append(f"a refused redemption names no case: {outcome}")


class SoakTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def test_kill_9_at_random_under_mixed_load_loses_and_duplicates_nothing(self):
        cluster = self.cluster
        rng = random.Random()
        tenant, allow_tenant = support.new_tenant(), support.new_tenant()
        load = Load(cluster, tenant, allow_tenant)
        kills = 0
        try:
            end = time.monotonic() + SECONDS
            while time.monotonic() < end:
                time.sleep(rng.uniform(0.5, 3.0))
                # One replica, now and then two, killed; restarted after a moment.
                victims = rng.sample(cluster.replicas, 2 if rng.random() < 0.25 else 1)
                for v in victims:
                    v.kill()
                    kills += 1
                time.sleep(rng.uniform(0.0, 1.5))
                for v in victims:
                    v.restart()
        finally:
            load.stop()
            for r in cluster.replicas:
                if not r.alive:
                    r.restart()
        cluster.wait_ready()
        report = f"{kills} kills; {dict(load.counts)}; {len(load.told)} cases told, " \
                 f"{len(load.approved)} approved, {sum(load.redeemed.values())} redeemed"
        print(report)
        if load.errors:
            self.fail(f"{len(load.errors)} calls failed unexpectedly; {report}\n"
                      + "\n".join(load.errors[:20]))
        if load.wrong:
            self.fail(f"{len(load.wrong)} wrong answers; {report}\n" + "\n".join(load.wrong[:20]))
        self.assertGreater(kills, 0, report)
        self.assertTrue(load.told, report)

        # No approval was spent twice (each redemption had its own request_id).
        twice = {c: n for c, n in load.redeemed.items() if n > 1}
        self.assertFalse(twice, f"approvals redeemed more than once: {twice}")

        # Every case a client was told exists, on every replica; approvals and redemptions as
        # the clients were told.
        for r in cluster.replicas:
            wait_for_cases(r, load.told)
            wait_for_cases(r, load.approved, lambda c: c.state == pb.CASE_STATE_APPROVED,
                           "is APPROVED")
            wait_for_cases(r, load.redeemed, lambda c: c.redeemed, "is redeemed")
            for case_id in load.redeemed:
                history = [t.event for t in r.client.get_case(case_id).history]
                self.assertEqual(history.count("redeemed"), 1, (r.name, case_id, history))

        # No scope has two open cases, on any replica.
        for r in cluster.replicas:
            open_cases = list_cases(r.client, tenant, pb.CASE_STATE_OPEN)
            by_scope = collections.Counter((c.lane, c.scope_key) for c in open_cases)
            self.assertFalse({k: n for k, n in by_scope.items() if n > 1},
                             f"{r.name}: scopes with more than one open case")

        # Each replica's decision log verifies, after a clean stop.
        for r in cluster.replicas:
            r.stop()
        for name, done in cluster.verify_logs().items():
            self.assertEqual(done.returncode, 0, f"{name}: {done.stdout}{done.stderr}")
            self.assertIn("chain intact", done.stdout, name)


if __name__ == "__main__":
    unittest.main()
