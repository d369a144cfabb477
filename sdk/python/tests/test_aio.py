"""agate.aio.Client against the real agate-server: the same contract as agate.Client."""

import asyncio
import threading
import unittest

import grpc

import agate
from agate.v1 import agate_pb2 as pb
from tests import support


class AioClientTest(unittest.IsolatedAsyncioTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = support.AgateServer()
        cls.addClassCleanup(cls.server.stop)
        # A blocking client plays the person who acknowledges.
        cls.operator = agate.Client(cls.server.address, deadline=support.DEADLINE)
        cls.addClassCleanup(cls.operator.close)

    async def asyncSetUp(self):
        self.tenant = support.new_tenant()
        self.client = agate.aio.Client(self.server.address, deadline=support.DEADLINE)

    async def asyncTearDown(self):
        await self.client.close()

    async def test_allow_and_block(self):
        allow = await self.client.evaluate(support.allow_request(self.tenant))
        self.assertEqual(allow.verdict, "ALLOW")
        block = await self.client.evaluate(support.block_request(self.tenant))
        self.assertEqual(block.verdict, "BLOCK")
        self.assertEqual(block.owner, "finance-approver")
        self.assertEqual(self.client.counters(), agate.Counters(ok=2, escalated=1))

    async def test_concurrent_calls(self):
        decisions = await asyncio.gather(*(
            self.client.evaluate(support.allow_request(self.tenant)) for _ in range(32)))
        self.assertEqual({d.verdict for d in decisions}, {"ALLOW"})
        self.assertEqual(len({d.request_id for d in decisions}), 32)

    async def test_invalid_argument_raises_with_the_field(self):
        with self.assertRaises(agate.InvalidArgumentError) as raised:
            await self.client.evaluate({"tenant_id": self.tenant, "model": {"confidence": 1.5}})
        self.assertIn("model.confidence", raised.exception.details)
        self.assertEqual(self.client.counters().error, 1)

    async def test_gate_approved_redeems_once(self):
        request = support.block_request(self.tenant, request_id="a-1")
        acked = support.acknowledge_when_open(self.operator, self.tenant)
        decision = await self.client.gate(request, timeout=support.WAIT)
        case = acked.result(timeout=support.WAIT)
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertEqual(decision.case_id, case.id)
        self.assertEqual(decision.request_id, "a-1:redeem")
        self.assertEqual(decision.original.verdict, "BLOCK")
        again = await self.client.evaluate(dict(request, request_id="a-1:again",
                                                approval={"case_id": case.id}))
        self.assertEqual(again.verdict, "BLOCK")
        self.assertIn("already redeemed", again.reason)

    async def test_gate_rejected(self):
        support.acknowledge_when_open(self.operator, self.tenant, decision="reject",
                                      comment="wrong account")
        decision = await self.client.gate(support.block_request(self.tenant),
                                          timeout=support.WAIT)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertEqual(decision.case_state, "REJECTED")
        self.assertIn("wrong account", decision.reason)

    async def test_gate_timeout_fails_closed(self):
        decision = await self.client.gate(support.block_request(self.tenant), timeout=0.3)
        self.assertEqual(decision.verdict, "BLOCK")
        self.assertTrue(decision.timed_out)

    async def test_gate_does_not_block_the_loop(self):
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        decision = await self.client.gate(support.block_request(self.tenant), timeout=0.5)
        ticker.cancel()
        self.assertTrue(decision.timed_out)
        self.assertGreater(ticks, 0)

    async def test_case_calls(self):
        block = await self.client.evaluate(support.block_request(self.tenant))
        case = await self.client.get_case(block.case_id)
        self.assertEqual(case.state, pb.CASE_STATE_OPEN)
        listed = await self.client.list_cases(tenant_id=self.tenant)
        self.assertEqual([c.id for c in listed.cases], [block.case_id])
        acked = await self.client.acknowledge(block.case_id, "approve",
                                              approver=support.APPROVER)
        self.assertEqual(acked.state, pb.CASE_STATE_APPROVED)
        with self.assertRaises(agate.NotFoundError):
            await self.client.get_case("case_nope")
        self.assertTrue((await self.client.stats()).triggers)


class AioNoAnswerTest(unittest.IsolatedAsyncioTestCase):

    async def test_nothing_listening_fails_closed_or_open(self):
        async with agate.aio.Client("unix:/nonexistent/agate.sock",
                                    deadline=support.DEADLINE) as closed:
            decision = await closed.evaluate(support.allow_request("acme"))
            self.assertEqual(decision.verdict, "HOLD")
            self.assertTrue(decision.failed_closed)
            self.assertIn("UNAVAILABLE", decision.reason)
            with self.assertRaises(agate.AgateUnavailable) as raised:
                await closed.get_case("case_x")
            self.assertIs(raised.exception.code, grpc.StatusCode.UNAVAILABLE)
        async with agate.aio.Client("unix:/nonexistent/agate.sock", deadline=support.DEADLINE,
                                    failure_mode="open") as opened:
            decision = await opened.evaluate(support.block_request("acme"))
            self.assertEqual(decision.verdict, "ALLOW")
            self.assertTrue(decision.failed_open)

    async def test_slow_server_fails_closed(self):
        release = threading.Event()

        def stall(request, context):
            release.wait(support.WAIT)
            return pb.EvaluateResponse(verdict=pb.VERDICT_ALLOW)

        with support.FakeAgate(stall) as fake:
            try:
                async with agate.aio.Client(fake.address, deadline=0.05) as client:
                    decision = await client.evaluate(support.allow_request("acme"))
            finally:
                release.set()
        self.assertEqual(decision.verdict, "HOLD")
        self.assertTrue(decision.failed_closed)
        self.assertIn("DEADLINE_EXCEEDED", decision.reason)
        self.assertEqual(client.counters(), agate.Counters(failed_closed=1))


if __name__ == "__main__":
    unittest.main()
