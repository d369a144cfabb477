"""agate.Client against the real agate-server: verdicts, errors, transports, failure modes."""

import os
import tempfile
import threading
import unittest

import grpc

import agate
from agate.v1 import agate_pb2 as pb
from tests import support


class EvaluateTest(unittest.TestCase):
    """Decisions of the bundled matrix, through a real server on loopback TCP."""

    @classmethod
    def setUpClass(cls):
        cls.server = support.AgateServer()
        cls.addClassCleanup(cls.server.stop)
        cls.client = agate.Client(cls.server.address, deadline=support.DEADLINE)
        cls.addClassCleanup(cls.client.close)

    def setUp(self):
        self.tenant = support.new_tenant()

    def test_allow(self):
        decision = self.client.evaluate(support.allow_request(self.tenant))
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertTrue(decision.allowed)
        self.assertEqual(decision.case_id, "")
        self.assertIsNone(decision.sla_deadline)
        self.assertFalse(decision.failed_closed)
        self.assertFalse(decision.failed_open)
        self.assertNotEqual(decision.decision_id, "")
        self.assertEqual(decision.response.verdict, pb.VERDICT_ALLOW)

    def test_block_names_case_owner_sla_and_what_to_do(self):
        decision = self.client.evaluate(support.block_request(self.tenant, request_id="r1"))
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertFalse(decision.allowed)
        self.assertTrue(decision.case_id.startswith("case_"), decision.case_id)
        self.assertEqual(decision.lane, "financial")
        self.assertEqual(decision.owner, "finance-approver")
        self.assertEqual(decision.backup, "controller")
        self.assertEqual(decision.triggers, ["refund-over-limit"])
        self.assertIn("justification", decision.missing_evidence)
        self.assertIn("sign-off", decision.agent_action)
        self.assertIsNotNone(decision.sla_deadline)
        self.assertIsNotNone(decision.sla_deadline.tzinfo)
        self.assertEqual(decision.request_id, "r1")

    def test_each_refusing_verdict(self):
        t = self.tenant
        cases = [
            ("HOLD", "customer", {"tenant_id": t, "item_id": "ticket-1",
                                  "action": {"type": "send_reply", "customer_facing": True},
                                  "model": {"confidence": 0.3}}),
            ("PARK_ITEM", "policy", {"tenant_id": t, "item_id": "ticket-2",
                                     "action": {"type": "discount"},
                                     "attributes": {"discount_pct": 35}}),
            ("SAFE_MODE", "ops", {"tenant_id": t, "workflow_id": "w1", "action": {"type": "x"},
                                  "signals": {"retry": 5}}),
            ("BLOCK", "financial", support.block_request(t)),
            ("DENY", "security", {"tenant_id": t, "actor": {"credential_id": "cred-1"},
                                  "action": {"type": "x", "requested_scopes": ["admin"]}}),
        ]
        for verdict, lane, request in cases:
            with self.subTest(verdict=verdict):
                decision = self.client.evaluate(request)
                self.assertEqual(decision.verdict, verdict)
                self.assertEqual(decision.lane, lane)
                self.assertNotEqual(decision.case_id, "")
                self.assertFalse(decision.allowed)
        counters = self.client.counters()
        self.assertGreaterEqual(counters.escalated, len(cases))

    def test_lower_camel_case_names_and_messages_are_accepted(self):
        camel = self.client.evaluate({"requestId": "c1", "tenantId": self.tenant,
                                      "itemId": "order-9",
                                      "action": {"type": "refund", "amount": 400}})
        self.assertEqual(camel.verdict, "BLOCK")
        message = pb.EvaluateRequest(request_id="m1", tenant_id=self.tenant,
                                     action=pb.Action(type="send_reply", customer_facing=True),
                                     model=pb.Model(confidence=0.93))
        self.assertEqual(self.client.evaluate(message).verdict, "ALLOW")

    def test_generated_request_ids_are_fresh_and_replay_with_the_same_decision(self):
        request = support.block_request(self.tenant)
        first = self.client.evaluate(request)
        second = self.client.evaluate(request)
        self.assertNotIn("request_id", request, "the caller's dict must not be modified")
        self.assertNotEqual(first.request_id, second.request_id)
        self.assertFalse(first.replayed)
        self.assertFalse(second.replayed)
        again = self.client.evaluate(dict(request, request_id=first.request_id))
        self.assertTrue(again.replayed)
        self.assertEqual(again.decision_id, first.decision_id)
        self.assertEqual(again.case_id, first.case_id)

    def test_message_without_request_id_is_not_modified(self):
        message = pb.EvaluateRequest(tenant_id=self.tenant, action=pb.Action(type="x"))
        decision = self.client.evaluate(message)
        self.assertEqual(message.request_id, "")
        self.assertNotEqual(decision.request_id, "")

    def test_invalid_argument_names_the_field(self):
        before = self.client.counters()
        with self.assertRaises(agate.InvalidArgumentError) as raised:
            self.client.evaluate({"tenant_id": self.tenant, "model": {"confidence": 1.5}})
        error = raised.exception
        self.assertIs(error.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("model.confidence", error.details)
        self.assertIn("1.5", error.details)
        self.assertIn("model.confidence", str(error))
        self.assertIn("fix the named field", str(error))
        self.assertEqual(self.client.counters().error, before.error + 1)

    def test_missing_tenant_is_invalid_argument(self):
        with self.assertRaises(agate.InvalidArgumentError) as raised:
            self.client.evaluate({"action": {"type": "x"}})
        self.assertIn("tenant_id", raised.exception.details)

    def test_reused_request_id_for_another_request_is_already_exists(self):
        self.client.evaluate(support.allow_request(self.tenant, request_id="same"))
        with self.assertRaises(agate.AlreadyExistsError) as raised:
            self.client.evaluate(support.block_request(self.tenant, request_id="same"))
        self.assertIn("new request_id", str(raised.exception))

    def test_unknown_field_is_refused_before_sending(self):
        before = self.client.counters()
        with self.assertRaises(agate.InvalidArgumentError) as raised:
            self.client.evaluate({"tenant_id": self.tenant, "acton": {"type": "x"}})
        self.assertIn("acton", str(raised.exception))
        self.assertEqual(self.client.counters(), before)
        with self.assertRaises(TypeError):
            self.client.evaluate("tenant_id=acme")

    def test_case_calls(self):
        decision = self.client.evaluate(support.block_request(self.tenant))
        case = self.client.get_case(decision.case_id)
        self.assertEqual(case.state, pb.CASE_STATE_OPEN)
        self.assertEqual(case.tenant_id, self.tenant)
        listed = self.client.list_cases(tenant_id=self.tenant)
        self.assertEqual([c.id for c in listed.cases], [decision.case_id])
        with self.assertRaises(agate.PermissionDeniedError) as raised:
            self.client.acknowledge(decision.case_id, "approve", approver="support-lead")
        self.assertIn("finance-approver", raised.exception.details)
        closed = self.client.acknowledge(decision.case_id, "reject", comment="no receipt",
                                         approver=support.APPROVER)
        self.assertEqual(closed.state, pb.CASE_STATE_REJECTED)
        with self.assertRaises(agate.FailedPreconditionError):
            self.client.acknowledge(decision.case_id, "approve", approver=support.APPROVER)
        with self.assertRaises(agate.NotFoundError) as raised:
            self.client.get_case("case_nope")
        self.assertIn("case_nope", str(raised.exception))
        with self.assertRaises(ValueError):
            self.client.acknowledge(decision.case_id, "maybe")
        stats = self.client.stats()
        self.assertIn("refund-over-limit", [t.trigger_id for t in stats.triggers])

    def test_watch_cases_streams_transitions(self):
        call = self.client.watch_cases(tenant_id=self.tenant)
        self.addCleanup(call.cancel)
        events = []

        def read():
            try:
                for event in call:
                    events.append(event)
            except grpc.RpcError:
                pass  # cancelled at cleanup

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # The watcher may not be subscribed yet: evaluate until an event arrives.
        for i in range(200):
            self.client.evaluate(support.block_request(self.tenant, item_id=f"order-{i}"))
            reader.join(0.05)
            if events:
                break
        self.assertTrue(events, "no case event within 200 escalations")
        self.assertEqual(events[0].case.tenant_id, self.tenant)
        self.assertEqual(events[0].transition.event, "opened")

    def test_counters(self):
        client = agate.Client(self.server.address, deadline=support.DEADLINE)
        self.addCleanup(client.close)
        client.evaluate(support.allow_request(self.tenant))
        client.evaluate(support.block_request(self.tenant))
        with self.assertRaises(agate.InvalidArgumentError):
            client.evaluate({"tenant_id": self.tenant, "model": {"confidence": -1}})
        self.assertEqual(client.counters(), agate.Counters(ok=2, escalated=1, error=1))


class UnixSocketTest(unittest.TestCase):

    def test_evaluate_over_a_unix_socket(self):
        directory = tempfile.mkdtemp(prefix="agate-sdk-")
        path = os.path.join(directory, "agate.sock")
        self.addCleanup(os.rmdir, directory)
        with support.AgateServer(listen=f"unix:{path}") as server:
            self.assertEqual(server.address, f"unix:{path}")
            with agate.Client(f"unix:{path}", deadline=support.DEADLINE) as client:
                tenant = support.new_tenant()
                self.assertEqual(client.evaluate(support.allow_request(tenant)).verdict, "ALLOW")
                self.assertEqual(client.evaluate(support.block_request(tenant)).verdict, "BLOCK")
        if os.path.exists(path):
            os.unlink(path)


class NoAnswerTest(unittest.TestCase):
    """When agate does not answer, evaluate fails closed (or open), never raises."""

    def test_nothing_listening_fails_closed(self):
        with support.FakeAgate(lambda r, c: pb.EvaluateResponse()) as fake:
            address = fake.address  # a port that was free a moment ago
        with agate.Client(address, deadline=support.DEADLINE) as client:
            decision = client.evaluate(support.allow_request("acme"))
            self.assertEqual(decision.verdict, "HOLD")
            self.assertFalse(decision.allowed)
            self.assertTrue(decision.failed_closed)
            self.assertFalse(decision.failed_open)
            self.assertIn("UNAVAILABLE", decision.reason)
            self.assertIn("failing closed", decision.reason)
            self.assertEqual(decision.response.verdict, pb.VERDICT_HOLD)
            self.assertTrue(decision.response.failed_closed)
            self.assertEqual(client.counters(), agate.Counters(failed_closed=1))

    def test_nothing_listening_fails_open_when_configured(self):
        with support.FakeAgate(lambda r, c: pb.EvaluateResponse()) as fake:
            address = fake.address
        with agate.Client(address, deadline=support.DEADLINE, failure_mode="open") as client:
            decision = client.evaluate(support.block_request("acme"))
            self.assertEqual(decision.verdict, "ALLOW")
            self.assertTrue(decision.allowed)
            self.assertTrue(decision.failed_open)
            self.assertFalse(decision.failed_closed)
            self.assertIn("failing open", decision.reason)
            self.assertEqual(client.counters(), agate.Counters(failed_open=1))

    def test_missing_unix_socket_fails_closed(self):
        with agate.Client("unix:/nonexistent/agate.sock", deadline=support.DEADLINE) as client:
            decision = client.evaluate(support.allow_request("acme"))
            self.assertTrue(decision.failed_closed)
            self.assertIn("UNAVAILABLE", decision.reason)

    def test_stopped_server_exceeds_the_deadline_and_fails_closed(self):
        with support.AgateServer() as server, agate.Client(server.address,
                                                           deadline=0.5) as client:
            tenant = support.new_tenant()
            # Connected and answering first (retry: the first call may race the connection).
            for _ in range(20):
                if client.evaluate(support.allow_request(tenant)).verdict == "ALLOW":
                    break
            else:
                self.fail("the server never answered")
            server.pause()
            try:
                decision = client.evaluate(support.allow_request(tenant))
            finally:
                server.resume()
            self.assertEqual(decision.verdict, "HOLD")
            self.assertTrue(decision.failed_closed)
            self.assertIn("DEADLINE_EXCEEDED", decision.reason)
            # Back to real answers once the server runs again.
            for _ in range(20):
                decision = client.evaluate(support.allow_request(tenant))
                if not decision.failed_closed:
                    break
            self.assertEqual(decision.verdict, "ALLOW")
            self.assertFalse(decision.failed_closed)

    def test_slow_server_exceeds_the_deadline_and_fails_closed(self):
        release = threading.Event()

        def stall(request, context):
            release.wait(support.WAIT)
            return pb.EvaluateResponse(verdict=pb.VERDICT_ALLOW)

        with support.FakeAgate(stall) as fake:
            self.addCleanup(release.set)  # before fake.stop: let the handler return
            with agate.Client(fake.address, deadline=0.05) as closed:
                decision = closed.evaluate(support.allow_request("acme"))
                self.assertEqual(decision.verdict, "HOLD")
                self.assertTrue(decision.failed_closed)
                self.assertIn("DEADLINE_EXCEEDED", decision.reason)
            with agate.Client(fake.address, deadline=0.05, failure_mode="open") as opened:
                decision = opened.evaluate(support.allow_request("acme"))
                self.assertEqual(decision.verdict, "ALLOW")
                self.assertTrue(decision.failed_open)
                self.assertIn("DEADLINE_EXCEEDED", decision.reason)
            release.set()


if __name__ == "__main__":
    unittest.main()
