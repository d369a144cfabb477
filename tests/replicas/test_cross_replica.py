"""(f) A case's life crosses replicas: opened and approved through replica 1, redeemed once
through replica 3, and streamed in order by a WatchCases on replica 2; a scope in force (SAFE_MODE)
opened on one replica reaches the others' ALLOW path, and lifts everywhere."""

import itertools
import queue
import threading
import time
import unittest

import grpc

import agate
from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import WAIT, Cluster, request_id, wait_until


class Watch:
    """Watch reads a WatchCases stream of one tenant into a queue, on a daemon thread."""

    def __init__(self, client, tenant: str):
        self.events: queue.Queue = queue.Queue()
        self._call = client.watch_cases(tenant_id=tenant)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._call:
                self.events.put(event)
                for more in event.more:
                    self.events.put(more)
        except grpc.RpcError as e:
            self.events.put(e)

    def until(self, case_id: str, event: str, seen: list[str]) -> None:
        """until reads events, appending case_id's to seen, until case_id's `event` arrives."""
        while True:
            try:
                e = self.events.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no '{event}' of case {case_id} within {WAIT}s; "
                                     f"seen: {seen}") from None
            if isinstance(e, grpc.RpcError):
                raise AssertionError(f"the watch ended: {e.code()} {e.details()}; seen: {seen}")
            if e.case.id != case_id:
                continue
            seen.append(e.transition.event)
            if e.transition.event == event:
                return

    def wait_live(self, cluster, tenant: str, replica) -> None:
        """wait_live returns once the stream delivers events: it opens cases on other items
        (through replica) until one's "opened" arrives."""
        end = time.monotonic() + WAIT
        for n in itertools.count():
            probe = cluster.evaluate(support.block_request(
                tenant, item_id=f"probe-{n}", request_id=request_id()), replica)
            if not probe.answered:
                raise AssertionError(f"probe: {probe}")
            try:
                e = self.events.get(timeout=2)
            except queue.Empty:
                if time.monotonic() > end:
                    raise AssertionError(f"the watch delivered nothing within {WAIT}s") from None
                continue
            if isinstance(e, grpc.RpcError):
                raise AssertionError(f"the watch ended: {e.code()} {e.details()}")
            # Whatever else is queued (earlier probes) is drained by until() by case id.
            return

    def close(self) -> None:
        self._call.cancel()


class CrossReplicaTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def test_approved_through_one_replica_redeemed_once_through_another_watched_on_a_third(self):
        cluster = self.cluster
        r1, r2, r3 = cluster.replicas
        tenant = support.new_tenant()
        watch = Watch(r2.client, tenant)
        self.addCleanup(watch.close)
        watch.wait_live(cluster, tenant, r1)

        request = support.block_request(tenant, request_id=request_id())
        opened = cluster.evaluate(request, r1)
        self.assertEqual(opened.verdict, "VERDICT_BLOCK", opened)
        case_id = opened.response.case_id
        # Acknowledged through replica 1, right after it opened the case there.
        approved = r1.client.acknowledge(case_id, "approve", approver=support.APPROVER)
        self.assertEqual(approved.state, pb.CASE_STATE_APPROVED)

        redemption = dict(request, request_id=request_id(), approval={"case_id": case_id})
        redeemed = cluster.evaluate(redemption, r3)
        self.assertTrue(redeemed.allowed, redeemed)
        self.assertEqual(redeemed.response.case_id, case_id)
        self.assertIn("redeemed once", redeemed.response.reason)

        # Once: a second redemption (its own request_id) is refused through any replica.
        for r in cluster.replicas:
            again = cluster.evaluate(dict(redemption, request_id=request_id()), r)
            self.assertTrue(again.answered, again)
            self.assertEqual(again.response.verdict, pb.VERDICT_BLOCK, again)
            self.assertIn("already redeemed", again.response.reason, again)
        # The redeeming request sent again is the same decision (replayed), through any replica.
        for r in cluster.replicas:
            replay = cluster.evaluate(redemption, r)
            self.assertTrue(replay.allowed, replay)
            self.assertTrue(replay.response.replayed, replay)
            self.assertEqual(replay.response.decision_id, redeemed.response.decision_id)

        seen: list[str] = []
        watch.until(case_id, "redeemed", seen)
        self.assertEqual(seen, ["opened", "approved", "redeemed"])
        for r in cluster.replicas:
            wait_until(lambda r=r: r.client.get_case(case_id).redeemed,
                       f"{r.name} shows case {case_id} redeemed")

    def test_acknowledging_a_case_another_replica_opened_refuses_the_wrong_approver(self):
        cluster = self.cluster
        r1, r2, _ = cluster.replicas
        tenant = support.new_tenant()
        opened = cluster.evaluate(support.block_request(tenant, request_id=request_id()), r1)
        self.assertTrue(opened.answered, opened)
        with self.assertRaises(agate.PermissionDeniedError):
            r2.client.acknowledge(opened.response.case_id, "approve", approver="support-lead")
        case = r2.client.acknowledge(opened.response.case_id, "reject",
                                     approver=support.APPROVER)
        self.assertEqual(case.state, pb.CASE_STATE_REJECTED)
        # Closed everywhere: a second acknowledgement through the third replica is refused.
        with self.assertRaises(agate.FailedPreconditionError):
            cluster.replicas[2].client.acknowledge(opened.response.case_id, "approve",
                                                   approver=support.APPROVER)

    def test_safe_mode_opened_on_one_replica_reaches_the_others_and_lifts_everywhere(self):
        cluster = self.cluster
        r1, r2, r3 = cluster.replicas
        tenant = support.new_tenant()
        action = {"tenant_id": tenant, "workflow_id": "w1", "action": {"type": "send_reply"}}
        for r in cluster.replicas:
            before = cluster.evaluate(dict(action, request_id=request_id()), r)
            self.assertTrue(before.allowed, before)
        # A queue spike puts workflow w1 in SAFE_MODE (the ops lane) through replica 1 ...
        storm = cluster.evaluate(dict(action, request_id=request_id(),
                                      attributes={"queue_depth": 900}), r1)
        self.assertEqual(storm.verdict, "VERDICT_SAFE_MODE", storm)
        # ... and the other replicas' ALLOW path follows (their feed poll).
        for r in (r2, r3):
            wait_until(lambda r=r: cluster.evaluate(dict(action, request_id=request_id()), r)
                       .verdict == "VERDICT_SAFE_MODE",
                       f"{r.name} imposes SAFE_MODE on workflow w1")
        # Resolved through replica 3: every replica allows again.
        r3.client.acknowledge(storm.response.case_id, "resolve", approver="ops-oncall")
        for r in cluster.replicas:
            wait_until(lambda r=r: cluster.evaluate(dict(action, request_id=request_id()), r)
                       .allowed, f"{r.name} allows workflow w1 again")


if __name__ == "__main__":
    unittest.main()
