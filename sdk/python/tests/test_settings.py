"""Client settings: argument checks, the bearer token on every call, TLS and mutual TLS.

agate-server does not speak TLS or check tokens yet, so these run against FakeAgate, an
in-process server that answers with what it saw.
"""

import asyncio
import unittest

import grpc

import agate
from agate import _settings
from agate.v1 import agate_pb2 as pb
from tests import support


def echo_authorization(request, context):
    """Evaluate that answers ALLOW with reason = the call's authorization metadata."""
    metadata = dict(context.invocation_metadata())
    return pb.EvaluateResponse(verdict=pb.VERDICT_ALLOW,
                               reason=metadata.get("authorization", "<none>"))


def echo_peer_identity(request, context):
    """Evaluate that answers ALLOW with reason = the client certificate's common name."""
    names = context.auth_context().get("x509_common_name", [b"<none>"])
    return pb.EvaluateResponse(verdict=pb.VERDICT_ALLOW, reason=names[0].decode())


class ArgumentsTest(unittest.TestCase):

    def test_bad_arguments_say_what_is_expected(self):
        cases = [
            ({"target": ""}, ValueError, "host:port"),
            ({"target": "h:1", "deadline": 0}, ValueError, "positive"),
            ({"target": "h:1", "deadline": -1}, ValueError, "positive"),
            ({"target": "h:1", "deadline": float("inf")}, ValueError, "positive"),
            ({"target": "h:1", "failure_mode": "allow"}, ValueError, "'closed'"),
            ({"target": "h:1", "tls": "ca.pem"}, TypeError, "agate.TLS"),
            ({"target": "127.0.0.1:1", "token": ""}, ValueError, "non-empty"),
            ({"target": "127.0.0.1:1", "token": "Bearer abc"}, ValueError, "not the header"),
            ({"target": "agate.example.com:443", "token": "abc"}, ValueError, "clear text"),
        ]
        for kwargs, error, text in cases:
            kwargs = dict(kwargs)
            target = kwargs.pop("target")
            with self.subTest(**{k: repr(v) for k, v in kwargs.items()}, target=target):
                with self.assertRaises(error) as raised:
                    agate.Client(target, **kwargs)
                self.assertIn(text, str(raised.exception))

    def test_tls_needs_cert_and_key_together(self):
        with self.assertRaisesRegex(ValueError, "cert and key"):
            agate.TLS(cert="client.pem")
        with self.assertRaises(FileNotFoundError):
            agate.Client("h:1", tls=agate.TLS(ca="/nonexistent/ca.pem"))

    def test_local_targets(self):
        for target in ("unix:/run/agate.sock", "unix-abstract:agate", "localhost:7878",
                       "127.0.0.1:7878", "127.1.2.3:1", "[::1]:7878", "dns:///localhost:7878",
                       "ipv4:127.0.0.1:7878"):
            with self.subTest(target=target):
                self.assertTrue(_settings.is_local(target))
        for target in ("agate.internal:7878", "10.0.0.1:7878", "[2001:db8::1]:7878",
                       "0.0.0.0:7878", "dns:///agate.internal:443"):
            with self.subTest(target=target):
                self.assertFalse(_settings.is_local(target))

    def test_properties(self):
        with agate.Client("unix:/x.sock", deadline=0.5, failure_mode="open") as client:
            self.assertEqual(client.target, "unix:/x.sock")
            self.assertEqual(client.deadline, 0.5)
            self.assertEqual(client.failure_mode, "open")
            self.assertEqual(client.counters(), agate.Counters())


class TokenTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.fake = support.FakeAgate(echo_authorization)
        cls.addClassCleanup(cls.fake.stop)

    def test_token_is_sent_as_bearer_metadata_on_every_call(self):
        with agate.Client(self.fake.address, deadline=support.DEADLINE,
                          token="s3cret.jwt.value") as client:
            for _ in range(2):
                self.assertEqual(client.evaluate({"tenant_id": "acme"}).reason,
                                 "Bearer s3cret.jwt.value")

    def test_no_token_sends_no_authorization(self):
        with agate.Client(self.fake.address, deadline=support.DEADLINE) as client:
            self.assertEqual(client.evaluate({"tenant_id": "acme"}).reason, "<none>")

    def test_token_callable_is_asked_on_every_call(self):
        tokens = iter(["first", "second"])
        with agate.Client(self.fake.address, deadline=support.DEADLINE,
                          token=lambda: next(tokens)) as client:
            self.assertEqual(client.evaluate({"tenant_id": "acme"}).reason, "Bearer first")
            self.assertEqual(client.evaluate({"tenant_id": "acme"}).reason, "Bearer second")

    def test_aio_client_sends_the_token(self):
        async def run():
            async with agate.aio.Client(self.fake.address, deadline=support.DEADLINE,
                                        token="aio-token") as client:
                return await client.evaluate({"tenant_id": "acme"})
        self.assertEqual(asyncio.run(run()).reason, "Bearer aio-token")

    def test_token_travels_with_the_approver_on_acknowledge(self):
        def echo_acknowledge(request, context):
            metadata = dict(context.invocation_metadata())
            return pb.AcknowledgeResponse(case=pb.Case(
                id=request.case_id, current_owner=metadata.get("x-agate-approver", "<none>"),
                owner=metadata.get("authorization", "<none>")))

        with support.FakeAgate(echo_authorization, acknowledge=echo_acknowledge) as fake, \
                agate.Client(fake.address, deadline=support.DEADLINE, token="t") as client:
            case = client.acknowledge("case_1", approver="finance-approver")
            self.assertEqual((case.owner, case.current_owner), ("Bearer t", "finance-approver"))
            case = client.acknowledge("case_1")
            self.assertEqual((case.owner, case.current_owner), ("Bearer t", "<none>"))


class TLSTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        try:
            cls.certs = support.Certificates()
        except FileNotFoundError:
            raise unittest.SkipTest("the openssl command is not installed")
        cls.addClassCleanup(cls.certs.__exit__)
        server_credentials = grpc.ssl_server_credentials(
            [(cls.certs.read("server.key"), cls.certs.read("server.pem"))],
            root_certificates=cls.certs.read("ca.pem"), require_client_auth=True)
        cls.fake = support.FakeAgate(echo_peer_identity, server_credentials)
        cls.addClassCleanup(cls.fake.stop)

    def test_mutual_tls_presents_the_client_certificate(self):
        tls = agate.TLS(ca=self.certs.path("ca.pem"), cert=self.certs.path("client.pem"),
                        key=self.certs.path("client.key"), server_name="localhost")
        with agate.Client(self.fake.address, deadline=support.DEADLINE, tls=tls,
                          token="t") as client:
            decision = client.evaluate({"tenant_id": "acme"})
        self.assertEqual(decision.verdict, "ALLOW")
        self.assertFalse(decision.failed_closed, decision.reason)
        self.assertEqual(decision.reason, "agent-7")

    def test_without_a_client_certificate_the_handshake_fails_closed(self):
        tls = agate.TLS(ca=self.certs.path("ca.pem"), server_name="localhost")
        with agate.Client(self.fake.address, deadline=support.DEADLINE, tls=tls) as client:
            decision = client.evaluate({"tenant_id": "acme"})
        self.assertEqual(decision.verdict, "HOLD")
        self.assertTrue(decision.failed_closed)
        self.assertIn("UNAVAILABLE", decision.reason)

    def test_an_untrusted_server_fails_closed(self):
        # No ca: the system roots do not know the test CA.
        tls = agate.TLS(cert=self.certs.path("client.pem"), key=self.certs.path("client.key"),
                        server_name="localhost")
        with agate.Client(self.fake.address, deadline=support.DEADLINE, tls=tls) as client:
            decision = client.evaluate({"tenant_id": "acme"})
        self.assertTrue(decision.failed_closed)

    def test_aio_client_speaks_mutual_tls(self):
        tls = agate.TLS(ca=self.certs.path("ca.pem"), cert=self.certs.path("client.pem"),
                        key=self.certs.path("client.key"), server_name="localhost")

        async def run():
            async with agate.aio.Client(self.fake.address, deadline=support.DEADLINE,
                                        tls=tls) as client:
                return await client.evaluate({"tenant_id": "acme"})
        self.assertEqual(asyncio.run(run()).reason, "agent-7")


if __name__ == "__main__":
    unittest.main()
