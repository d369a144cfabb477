"""(c) A case's timeout runs once across replicas, also when a replica is killed at the deadline.

testdata/timeout-matrix.yaml: financial cases expire 2 s after they open; customer cases go to
the backup after 2 s and are overdue 2 s later (the second timer armed by the first timeout).
Every replica arms the timers of every open case; whichever runs one first, the others must see
it done and not run it again.
"""

import time
import unittest

from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import TESTDATA, Cluster, request_id, timeouts, wait_until

MATRIX = TESTDATA / "timeout-matrix.yaml"
# Past every deadline of a test, time for a replica that would run a timeout a second time to
# do so (many feed polls and timer checks) before the histories are compared.
SETTLE = 3.0


def financial(tenant: str, item: str) -> dict:
    return support.block_request(tenant, item_id=item, request_id=request_id())


def customer(tenant: str, item: str) -> dict:
    return {"request_id": request_id(), "tenant_id": tenant, "workflow_id": "support",
            "item_id": item, "action": {"type": "send_reply", "customer_facing": True},
            "model": {"confidence": 0.3}}


class TimeoutOnceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3, matrix=MATRIX)
        cls.addClassCleanup(cls.cluster.close)

    def open(self, request: dict, replica) -> pb.EvaluateResponse:
        outcome = self.cluster.evaluate(request, replica)
        self.assertTrue(outcome.answered, outcome)
        self.assertIn(outcome.response.verdict, (pb.VERDICT_BLOCK, pb.VERDICT_HOLD), outcome)
        return outcome.response

    def assert_timed_out_once(self, replicas, expiring: list[str], reassigned: list[str]):
        """Each replica shows each expiring case EXPIRED by one timeout:expire, and each
        reassigned case with the backup as owner after timeout:notify_backup then
        timeout:overdue, once each."""
        for r in replicas:
            for case_id in expiring:
                wait_until(lambda: r.client.get_case(case_id).state == pb.CASE_STATE_EXPIRED,
                           f"{r.name} shows case {case_id} EXPIRED")
            for case_id in reassigned:
                wait_until(lambda: "timeout:overdue" in timeouts(r.client.get_case(case_id)),
                           f"{r.name} shows case {case_id} overdue after its backup's SLA")
        time.sleep(SETTLE)
        for r in replicas:
            for case_id in expiring:
                case = r.client.get_case(case_id)
                self.assertEqual(timeouts(case), ["timeout:expire"], (r.name, case_id))
                self.assertEqual(case.state, pb.CASE_STATE_EXPIRED)
            for case_id in reassigned:
                case = r.client.get_case(case_id)
                self.assertEqual(timeouts(case), ["timeout:notify_backup", "timeout:overdue"],
                                 (r.name, case_id))
                self.assertEqual(case.state, pb.CASE_STATE_OPEN)
                self.assertEqual(case.current_owner, "support-manager", (r.name, case_id))

    def test_a_timeout_runs_once_with_every_replica_alive(self):
        r1, r2, r3 = self.cluster.replicas
        tenant = support.new_tenant()
        expiring = [self.open(financial(tenant, f"order-{r.name}"), r).case_id
                    for r in (r1, r2, r3)]
        reassigned = [self.open(customer(tenant, f"ticket-{r.name}"), r).case_id
                      for r in (r1, r2, r3)]
        self.assert_timed_out_once(self.cluster.replicas, expiring, reassigned)

    def test_a_timeout_runs_once_when_a_replica_is_killed_at_the_deadline(self):
        for victim in self.cluster.replicas[:2]:
            with self.subTest(killed=victim.name):
                survivors = [r for r in self.cluster.replicas if r is not victim]
                tenant = support.new_tenant()
                opened = [self.open(financial(tenant, "order-1"), victim),
                          self.open(financial(tenant, "order-2"), survivors[0]),
                          self.open(customer(tenant, "ticket-1"), victim)]
                first = min(o.sla_deadline.seconds + o.sla_deadline.nanos / 1e9 for o in opened)
                # At the first deadline: the victim may be running the timeout, or about to.
                time.sleep(max(0.0, first - time.time() - 0.02))
                victim.kill()
                expiring = [o.case_id for o in opened[:2]]
                reassigned = [opened[2].case_id]
                try:
                    self.assert_timed_out_once(survivors, expiring, reassigned)
                finally:
                    victim.restart()
                # The restarted replica read the same history from the database.
                self.assert_timed_out_once([victim], expiring, reassigned)


if __name__ == "__main__":
    unittest.main()
