"""agate.guard: a tool runs only when agate allows it."""

import asyncio
import unittest

import agate
from tests import support


class GuardTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = support.AgateServer()
        cls.addClassCleanup(cls.server.stop)
        cls.client = agate.Client(cls.server.address, deadline=support.DEADLINE)
        cls.addClassCleanup(cls.client.close)

    def setUp(self):
        self.tenant = support.new_tenant()
        self.refunds = []

        @agate.guard(self.client, action_type="refund", tenant_id=self.tenant,
                     workflow_id="refunds", item_id=lambda a: a["order_id"],
                     amount=lambda a: a["amount"], currency="USD", timeout=0.3)
        def refund(order_id: str, amount: float, note: str = "") -> str:
            """Refunds an order."""
            self.refunds.append((order_id, amount))
            return f"refunded {amount} on {order_id}"

        self.refund = refund

    def test_allowed_call_runs_the_tool(self):
        self.assertEqual(self.refund("order-1", 20), "refunded 20 on order-1")
        self.assertEqual(self.refunds, [("order-1", 20)])
        self.assertEqual(self.refund.__name__, "refund")
        self.assertEqual(self.refund.__doc__, "Refunds an order.")

    def test_refused_call_raises_with_the_decision_and_does_not_run(self):
        with self.assertRaises(agate.ActionRefused) as raised:
            self.refund(order_id="order-2", amount=400)
        decision = raised.exception.decision
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertTrue(decision.timed_out)  # nobody approved within 0.3 s
        self.assertEqual(decision.owner, "finance-approver")
        case = self.client.get_case(decision.case_id)
        self.assertEqual(case.item_id, "order-2")
        self.assertEqual(case.workflow_id, "refunds")
        self.assertIn("agate refused refund: BLOCK", str(raised.exception))
        self.assertIn(decision.case_id, str(raised.exception))
        self.assertIn("nobody decided before the timeout", str(raised.exception))
        self.assertIn("meanwhile: block execution", str(raised.exception))
        self.assertEqual(self.refunds, [])

    def test_approved_call_runs_the_tool_once(self):
        @agate.guard(self.client, action_type="refund", tenant_id=self.tenant,
                     item_id=lambda a: a["order_id"], amount=lambda a: a["amount"],
                     timeout=support.WAIT)
        def refund(order_id, amount):
            self.refunds.append((order_id, amount))

        support.acknowledge_when_open(self.client, self.tenant)
        refund("order-3", 400)
        self.assertEqual(self.refunds, [("order-3", 400)])

    def test_without_wait_a_refusal_raises_at_once(self):
        @agate.guard(self.client, action_type="refund", tenant_id=lambda a: a["tenant"],
                     amount=lambda a: a["amount"], wait=False)
        def refund(tenant, amount):
            self.refunds.append(amount)

        with self.assertRaises(agate.ActionRefused) as raised:
            refund(self.tenant, 400)
        self.assertEqual(raised.exception.decision.verdict, "BLOCK")
        self.assertFalse(raised.exception.decision.timed_out)
        self.assertIsNone(raised.exception.decision.case)
        refund(self.tenant, 10)
        self.assertEqual(self.refunds, [10])

    def test_request_fields_from_arguments(self):
        @agate.guard(self.client, action_type="send_reply", tenant_id=self.tenant,
                     customer_facing=True, model=lambda a: {"confidence": a["confidence"]},
                     evidence=lambda a: {"original_input": a["text"]}, wait=False)
        def reply(text, confidence):
            return text

        self.assertEqual(reply("hello", 0.95), "hello")
        with self.assertRaises(agate.ActionRefused) as raised:
            reply("hmm", 0.4)
        self.assertEqual(raised.exception.decision.verdict, "HOLD")
        self.assertEqual(raised.exception.decision.lane, "customer")

    def test_bad_request_raises_the_agate_error(self):
        with self.assertRaises(agate.InvalidArgumentError) as raised:
            self.refund("order-4", -5)
        self.assertIn("action.amount", raised.exception.details)
        self.assertEqual(self.refunds, [])

    def test_wrong_call_raises_type_error_without_asking(self):
        before = self.client.counters()
        with self.assertRaises(TypeError):
            self.refund("order-5")
        self.assertEqual(self.client.counters(), before)

    def test_no_answer_fails_closed(self):
        with agate.Client("unix:/nonexistent/agate.sock") as down:
            @agate.guard(down, action_type="send_reply", tenant_id="acme")
            def reply():
                self.refunds.append("sent")

            with self.assertRaises(agate.ActionRefused) as raised:
                reply()
        self.assertTrue(raised.exception.decision.failed_closed)
        self.assertEqual(self.refunds, [])

    def test_declaration_errors(self):
        with self.assertRaisesRegex(ValueError, "unknown field.*amout"):
            agate.guard(self.client, action_type="refund", tenant_id="t", amout=1)
        with self.assertRaisesRegex(ValueError, "action_type"):
            agate.guard(self.client, action_type="", tenant_id="t")
        with self.assertRaisesRegex(TypeError, "agate.Client"):
            agate.guard(object(), action_type="refund", tenant_id="t")

        async def tool():
            pass
        with self.assertRaisesRegex(TypeError, "agate.aio.Client"):
            agate.guard(self.client, action_type="refund", tenant_id="t")(tool)


class AioGuardTest(unittest.IsolatedAsyncioTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = support.AgateServer()
        cls.addClassCleanup(cls.server.stop)

    async def test_async_tool(self):
        tenant = support.new_tenant()
        ran = []
        async with agate.aio.Client(self.server.address, deadline=support.DEADLINE) as client:
            @agate.guard(client, action_type="refund", tenant_id=tenant,
                         amount=lambda a: a["amount"], timeout=0.3)
            async def refund(amount):
                await asyncio.sleep(0)
                ran.append(amount)
                return amount

            self.assertEqual(await refund(10), 10)
            with self.assertRaises(agate.ActionRefused) as raised:
                await refund(400)
            self.assertEqual(raised.exception.decision.verdict, "BLOCK")
            self.assertTrue(raised.exception.decision.timed_out)

            def sync_tool():
                pass
            with self.assertRaisesRegex(TypeError, "agate.Client"):
                agate.guard(client, action_type="refund", tenant_id=tenant)(sync_tool)
        self.assertEqual(ran, [10])


if __name__ == "__main__":
    unittest.main()
