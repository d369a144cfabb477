"""The fail-closed table: agate.STATUS_OUTCOMES equals sdk/status_outcomes.json (the table every
agate client shares, checked against the C++ client by tests/client/status_outcomes_test.cc),
and evaluate() does what the table says for every status a server can return."""

import json
import unittest

import grpc

import agate
from agate.v1 import agate_pb2 as pb
from tests import support

TABLE_FILE = support.SOURCE_DIR / "sdk/status_outcomes.json"


class SharedTableTest(unittest.TestCase):

    def test_python_table_equals_the_shared_file_for_every_code(self):
        shared = json.loads(TABLE_FILE.read_text())
        self.assertEqual(sorted(shared), sorted(code.name for code in grpc.StatusCode),
                         f"{TABLE_FILE} must name every gRPC status code once")
        for code in grpc.StatusCode:
            with self.subTest(code=code.name):
                self.assertEqual(agate.STATUS_OUTCOMES[code.name], shared[code.name])
        self.assertEqual(dict(agate.STATUS_OUTCOMES), shared)

    def test_shared_file_uses_only_the_three_outcomes(self):
        shared = json.loads(TABLE_FILE.read_text())
        self.assertEqual(set(shared.values()), {"answer", "no_answer", "error"})
        self.assertEqual(shared["OK"], "answer")


def abort_with_code_named_by_tenant(request, context):
    """Evaluate that fails with the status code named by request.tenant_id."""
    context.abort(grpc.StatusCode[request.tenant_id], f"forced {request.tenant_id}")


class EvaluateFollowsTheTableTest(unittest.TestCase):
    """For every non-OK code a server returns, evaluate fails closed, fails open or raises,
    exactly as the shared table says."""

    @classmethod
    def setUpClass(cls):
        cls.fake = support.FakeAgate(abort_with_code_named_by_tenant)
        cls.addClassCleanup(cls.fake.stop)
        cls.shared = json.loads(TABLE_FILE.read_text())

    def test_every_status_code(self):
        closed = agate.Client(self.fake.address, deadline=support.DEADLINE)
        opened = agate.Client(self.fake.address, deadline=support.DEADLINE, failure_mode="open")
        self.addCleanup(closed.close)
        self.addCleanup(opened.close)
        for code in grpc.StatusCode:
            if code is grpc.StatusCode.OK:
                continue
            request = {"request_id": "r-" + code.name, "tenant_id": code.name}
            with self.subTest(code=code.name):
                if self.shared[code.name] == "no_answer":
                    held = closed.evaluate(request)
                    self.assertEqual(held.verdict, "HOLD")
                    self.assertTrue(held.failed_closed)
                    self.assertFalse(held.failed_open)
                    self.assertIn(f"({code.name}: forced {code.name}); failing closed",
                                  held.reason)
                    allowed = opened.evaluate(request)
                    self.assertEqual(allowed.verdict, "ALLOW")
                    self.assertTrue(allowed.failed_open)
                    self.assertIn("failing open", allowed.reason)
                else:
                    self.assertEqual(self.shared[code.name], "error")
                    for client in (closed, opened):
                        with self.assertRaises(agate.AgateError) as raised:
                            client.evaluate(request)
                        self.assertIs(raised.exception.code, code)
                        self.assertEqual(raised.exception.details, f"forced {code.name}")
        no_answer = sum(1 for v in self.shared.values() if v == "no_answer")
        error = sum(1 for v in self.shared.values() if v == "error")
        self.assertEqual(closed.counters(), agate.Counters(error=error, failed_closed=no_answer))
        self.assertEqual(opened.counters(), agate.Counters(error=error, failed_open=no_answer))

    def test_error_codes_raise_their_own_subclass(self):
        client = agate.Client(self.fake.address, deadline=support.DEADLINE)
        self.addCleanup(client.close)
        cases = [("INVALID_ARGUMENT", agate.InvalidArgumentError),
                 ("NOT_FOUND", agate.NotFoundError),
                 ("PERMISSION_DENIED", agate.PermissionDeniedError),
                 ("FAILED_PRECONDITION", agate.FailedPreconditionError),
                 ("ALREADY_EXISTS", agate.AlreadyExistsError),
                 ("OUT_OF_RANGE", agate.OutOfRangeError),
                 ("UNAUTHENTICATED", agate.UnauthenticatedError)]
        self.assertEqual(sorted(name for name, _ in cases),
                         sorted(n for n, v in self.shared.items() if v == "error"))
        for name, error_class in cases:
            with self.subTest(code=name), self.assertRaises(error_class):
                client.evaluate(pb.EvaluateRequest(request_id="x", tenant_id=name))


if __name__ == "__main__":
    unittest.main()
