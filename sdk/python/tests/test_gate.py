"""Client.gate against the real agate-server: wait for a person, redeem once, or refuse."""

import unittest

import agate
from agate.v1 import agate_pb2 as pb
from tests import support


class GateTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = support.AgateServer()
        cls.addClassCleanup(cls.server.stop)
        cls.client = agate.Client(cls.server.address, deadline=support.DEADLINE)
        cls.addClassCleanup(cls.client.close)

    def setUp(self):
        self.tenant = support.new_tenant()

    def test_allow_returns_without_waiting(self):
        decision = self.client.gate(support.allow_request(self.tenant), timeout=support.WAIT)
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertIsNone(decision.case)
        self.assertFalse(decision.timed_out)

    def test_deny_and_safe_mode_return_without_waiting(self):
        deny = self.client.gate({"tenant_id": self.tenant, "actor": {"credential_id": "c1"},
                                 "action": {"type": "x", "requested_scopes": ["admin"]}},
                                timeout=support.WAIT)
        self.assertEqual(deny.verdict, "DENY")
        safe = self.client.gate({"tenant_id": self.tenant, "workflow_id": "w1",
                                 "action": {"type": "x"}, "signals": {"retry": 5}},
                                timeout=support.WAIT)
        self.assertEqual(safe.verdict, "SAFE_MODE")
        for decision in (deny, safe):
            self.assertNotEqual(decision.case_id, "")
            self.assertIsNone(decision.case)  # it never looked at the case
            self.assertFalse(decision.timed_out)

    def test_approved_while_waiting_redeems_allow_once(self):
        request = support.block_request(self.tenant, request_id="refund-1")
        acked = support.acknowledge_when_open(self.client, self.tenant, comment="receipt ok")
        decision = self.client.gate(request, timeout=support.WAIT)
        case = acked.result(timeout=support.WAIT)
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertTrue(decision.allowed)
        self.assertEqual(decision.request_id, "refund-1:redeem")
        self.assertEqual(decision.case_id, case.id)
        self.assertEqual(decision.case_state, "APPROVED")
        self.assertIn("redeemed once", decision.reason)
        self.assertEqual(decision.original.verdict, "BLOCK")
        self.assertEqual(decision.original.case_id, case.id)
        self.assertEqual(decision.original.request_id, "refund-1")
        self.assertTrue(self.client.get_case(case.id).redeemed)

        # The approval is spent: a second redemption of the same case is refused.
        again = self.client.evaluate(dict(request, request_id="refund-1:again",
                                          approval={"case_id": case.id}))
        self.assertEqual(again.verdict, "BLOCK")
        self.assertIn("already redeemed", again.reason)

    def test_gate_again_with_the_same_request_id_replays_its_redemption(self):
        request = support.block_request(self.tenant, request_id="refund-2")
        support.acknowledge_when_open(self.client, self.tenant)
        first = self.client.gate(request, timeout=support.WAIT)
        self.assertEqual(first.verdict, "ALLOW")
        # E.g. the agent crashed after gate() returned and runs the same step again.
        second = self.client.gate(request, timeout=support.WAIT)
        self.assertEqual(second.verdict, "ALLOW")
        self.assertTrue(second.replayed)
        self.assertEqual(second.decision_id, first.decision_id)
        self.assertTrue(second.original.replayed)

    def test_approved_before_gate_subscribes_is_seen(self):
        request = support.block_request(self.tenant, request_id="refund-3")
        blocked = self.client.evaluate(request)
        self.client.acknowledge(blocked.case_id, "approve", approver=support.APPROVER)
        # gate() gets the replayed BLOCK; the approval happened before it watched.
        decision = self.client.gate(request, timeout=support.WAIT)
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertTrue(decision.original.replayed)
        self.assertEqual(decision.case_id, blocked.case_id)

    def test_rejected_returns_the_refusal_with_who_and_why(self):
        support.acknowledge_when_open(self.client, self.tenant, decision="reject",
                                      comment="no receipt")
        decision = self.client.gate(support.block_request(self.tenant), timeout=support.WAIT)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertFalse(decision.allowed)
        self.assertFalse(decision.timed_out)
        self.assertEqual(decision.case_state, "REJECTED")
        self.assertIn("rejected by finance-approver: no receipt", decision.reason)
        self.assertIsNone(decision.original)

    def test_resolved_returns_the_refusal(self):
        support.acknowledge_when_open(self.client, self.tenant, decision="resolve")
        decision = self.client.gate(support.block_request(self.tenant), timeout=support.WAIT)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertEqual(decision.case_state, "RESOLVED")
        self.assertIn("resolved by finance-approver", decision.reason)

    def test_timeout_returns_the_original_refusal(self):
        decision = self.client.gate(support.block_request(self.tenant), timeout=0.5)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertFalse(decision.allowed)
        self.assertTrue(decision.timed_out)
        self.assertEqual(decision.case_state, "OPEN")
        self.assertEqual(self.client.get_case(decision.case_id).state, pb.CASE_STATE_OPEN)

    def test_hold_and_park_item_wait_too(self):
        for verdict, request in [
                ("HOLD", {"tenant_id": self.tenant, "item_id": "ticket-1",
                          "action": {"type": "send_reply", "customer_facing": True},
                          "model": {"confidence": 0.3}}),
                ("PARK_ITEM", {"tenant_id": self.tenant, "item_id": "ticket-2",
                               "action": {"type": "discount"},
                               "attributes": {"discount_pct": 35}})]:
            with self.subTest(verdict=verdict):
                decision = self.client.gate(request, timeout=0.2)
                self.assertEqual(decision.verdict, verdict)
                self.assertTrue(decision.timed_out)

    def test_no_answer_returns_at_once_failing_closed(self):
        with agate.Client("unix:/nonexistent/agate.sock") as client:
            decision = client.gate(support.block_request(self.tenant), timeout=support.WAIT)
        self.assertEqual(decision.verdict, "HOLD")
        self.assertTrue(decision.failed_closed)
        self.assertFalse(decision.timed_out)

    def test_bad_timeout_is_refused(self):
        for timeout in (-1, float("nan"), "10"):
            with self.subTest(timeout=timeout), self.assertRaises(ValueError):
                self.client.gate(support.allow_request(self.tenant), timeout=timeout)


class GateExpiryTest(unittest.TestCase):

    def test_expired_case_returns_the_refusal(self):
        with support.AgateServer(matrix=support.TESTDATA / "expiring-matrix.yaml") as server, \
                agate.Client(server.address, deadline=support.DEADLINE) as client:
            decision = client.gate(support.block_request(support.new_tenant()),
                                   timeout=support.WAIT)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertFalse(decision.timed_out)
        self.assertEqual(decision.case_state, "EXPIRED")
        self.assertIn("expired", decision.reason)
        self.assertIn("new request_id", decision.reason)


if __name__ == "__main__":
    unittest.main()
