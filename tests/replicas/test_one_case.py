"""(b) Concurrent escalations of one scope across replicas join one case."""

import unittest

from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import Cluster, in_threads, list_cases, request_id, wait_until

ESCALATIONS = 20


class OneCasePerScopeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def test_twenty_concurrent_escalations_of_one_scope_name_one_case(self):
        cluster = self.cluster
        tenant = support.new_tenant()
        # One tenant/workflow/item (the financial lane's scope), a request_id each.
        outcomes = in_threads(ESCALATIONS, lambda i: cluster.evaluate(
            support.block_request(tenant, request_id=f"esc-{i}-{request_id()}")))
        summary = "\n".join(map(str, outcomes))
        self.assertTrue(all(o.answered for o in outcomes), summary)
        self.assertTrue(all(o.response.verdict == pb.VERDICT_BLOCK for o in outcomes), summary)
        case_ids = {o.response.case_id for o in outcomes}
        self.assertEqual(len(case_ids), 1, summary)
        case_id = case_ids.pop()
        self.assertTrue(case_id.startswith("case_"), case_id)
        self.assertEqual({o.replica for o in outcomes}, {r.name for r in cluster.replicas})

        for r in cluster.replicas:
            wait_until(lambda r=r: list_cases(r.client, tenant, pb.CASE_STATE_OPEN),
                       f"{r.name} lists the open case of tenant {tenant}")
            open_cases = list_cases(r.client, tenant, pb.CASE_STATE_OPEN)
            self.assertEqual([c.id for c in open_cases], [case_id], r.name)
            # Every escalation is in the case's history: one opened it, the others joined.
            wait_until(lambda r=r: len(r.client.get_case(case_id).history) == ESCALATIONS,
                       f"{r.name} shows the {ESCALATIONS} escalations of case {case_id}")
            history = [t.event for t in r.client.get_case(case_id).history]
            self.assertEqual(history.count("opened"), 1, (r.name, history))
            self.assertEqual(history.count("joined"), ESCALATIONS - 1, (r.name, history))
            self.assertEqual(sorted(r.client.get_case(case_id).request_ids),
                             sorted(o.request.request_id for o in outcomes), r.name)

    def test_a_request_sent_again_to_another_replica_gets_the_same_decision(self):
        cluster = self.cluster
        r1, r2, r3 = cluster.replicas
        tenant = support.new_tenant()
        request = support.block_request(tenant, request_id=request_id())
        first = cluster.evaluate(request, r1)
        self.assertTrue(first.answered, first)
        for r in (r2, r3):
            again = cluster.evaluate(request, r)
            self.assertTrue(again.answered, again)
            self.assertTrue(again.response.replayed, again)
            self.assertEqual(again.response.decision_id, first.response.decision_id)
            self.assertEqual(again.response.case_id, first.response.case_id)
        # The same request_id with other contents is refused on any replica.
        other = cluster.evaluate(dict(request, item_id="order-8"), r3)
        self.assertEqual(other.code.name if other.code else other.verdict, "ALREADY_EXISTS",
                         other)
        for r in cluster.replicas:
            wait_until(lambda r=r: list_cases(r.client, tenant, pb.CASE_STATE_OPEN),
                       f"{r.name} lists the open case of tenant {tenant}")
            self.assertEqual(len(list_cases(r.client, tenant)), 1, r.name)


if __name__ == "__main__":
    unittest.main()
