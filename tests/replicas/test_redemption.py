"""(a) An approval is redeemed once across replicas: 50 concurrent redemptions (each its own
request_id) get one ALLOW; one redemption sent 50 times at once is one decision, replayed."""

import unittest

from agate.v1 import agate_pb2 as pb
from tests import support

from cluster import Cluster, events, in_threads, request_id, wait_until

REDEMPTIONS = 50


class ConcurrentRedemptionTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def open_approved(self, tenant: str, opener, approver) -> str:
        """open_approved opens a BLOCK case through opener, approves it through approver and
        returns its id."""
        opening = self.cluster.evaluate(support.block_request(tenant, request_id=request_id()),
                                        opener)
        self.assertEqual(opening.verdict, "VERDICT_BLOCK", opening)
        approver.client.acknowledge(opening.response.case_id, "approve",
                                    approver=support.APPROVER)
        return opening.response.case_id

    def test_fifty_concurrent_redemptions_across_replicas_allow_once(self):
        cluster = self.cluster
        r1, r2, _ = cluster.replicas
        tenant = support.new_tenant()
        case_id = self.open_approved(tenant, opener=r1, approver=r2)

        # The same action naming the approval, each with its own request_id (one id would
        # only replay one decision), released at once and spread over the replicas.
        def redeem(i: int):
            return cluster.evaluate(support.block_request(
                tenant, request_id=f"redeem-{i}-{request_id()}", approval={"case_id": case_id}))

        outcomes = in_threads(REDEMPTIONS, redeem)
        summary = "\n".join(map(str, outcomes))
        allowed = [o for o in outcomes if o.allowed]
        self.assertEqual(len(allowed), 1, f"ALLOWs: {len(allowed)}\n{summary}")
        self.assertEqual(allowed[0].response.case_id, case_id)
        self.assertFalse([o for o in outcomes if o.error], summary)
        # The others were refused with a reason, not failed: the approval was spent.
        refused = [o for o in outcomes if o.answered and not o.allowed]
        self.assertEqual(len(refused), REDEMPTIONS - 1, summary)
        for o in refused:
            self.assertEqual(o.response.verdict, pb.VERDICT_BLOCK, o)
            self.assertIn("not redeemed", o.response.reason, o)

        # Every replica knows the case as redeemed, once.
        for r in cluster.replicas:
            wait_until(lambda r=r: r.client.get_case(case_id).redeemed,
                       f"{r.name} shows case {case_id} redeemed")
            case = r.client.get_case(case_id)
            self.assertEqual(case.state, pb.CASE_STATE_APPROVED, r.name)
            self.assertEqual(events(case).count("redeemed"), 1, (r.name, events(case)))

    def test_fifty_concurrent_sends_of_one_redemption_are_one_decision(self):
        cluster = self.cluster
        r1, _, r3 = cluster.replicas
        tenant = support.new_tenant()
        case_id = self.open_approved(tenant, opener=r3, approver=r1)

        # One redemption (one request_id) sent 50 times at once, as retrying clients would:
        # one decision, replayed to all of them; the approval is spent once.
        redemption = support.block_request(tenant, request_id=request_id(),
                                           approval={"case_id": case_id})
        outcomes = in_threads(REDEMPTIONS, lambda i: cluster.evaluate(redemption))
        summary = "\n".join(map(str, outcomes))
        self.assertTrue(all(o.allowed for o in outcomes), summary)
        self.assertEqual(len({o.response.decision_id for o in outcomes}), 1, summary)
        self.assertGreaterEqual(sum(o.response.replayed for o in outcomes), REDEMPTIONS - 1,
                                summary)
        for r in cluster.replicas:
            wait_until(lambda r=r: r.client.get_case(case_id).redeemed,
                       f"{r.name} shows case {case_id} redeemed")
            case = r.client.get_case(case_id)
            self.assertEqual(events(case).count("redeemed"), 1, (r.name, events(case)))


if __name__ == "__main__":
    unittest.main()
