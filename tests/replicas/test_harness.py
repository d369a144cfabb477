"""The harness itself (cluster.py), with a stand-in server (testdata/fake_server.py): a replica
that dies on its own, exits non-zero on SIGTERM or logs a sanitizer report fails the module;
kill and restart do not; PostgreSQL and the work directory are gone after close() either way."""

import os
import signal
import socket
import unittest
from urllib.parse import urlparse

from cluster import TESTDATA, Cluster, wait_until

FAKE_SERVER = TESTDATA / "fake_server.py"


class HarnessTest(unittest.TestCase):

    def start(self, **env: str) -> Cluster:
        for name, value in env.items():
            os.environ[name] = value
            self.addCleanup(os.environ.pop, name)
        cluster = Cluster(replicas=2, binary=str(FAKE_SERVER))
        self.addCleanup(cluster.close)  # a no-op after the test's own close()
        return cluster

    def assert_gone(self, cluster: Cluster) -> None:
        self.assertFalse(cluster.work.exists())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", urlparse(cluster.url).port), timeout=5)

    def assert_close_fails(self, cluster: Cluster, *messages: str) -> None:
        with self.assertRaises(AssertionError) as failure:
            cluster.close()
        for message in messages:
            self.assertIn(message, str(failure.exception))
        self.assert_gone(cluster)

    def test_a_cluster_whose_replicas_stop_cleanly_closes_quietly(self):
        cluster = self.start()
        self.assertTrue(all(r.alive for r in cluster.replicas))
        cluster.close()
        self.assertEqual(cluster.problems, [])
        self.assert_gone(cluster)

    def test_a_killed_and_restarted_replica_is_no_problem(self):
        cluster = self.start()
        r1 = cluster.replicas[0]
        r1.kill()
        self.assertFalse(r1.alive)
        r1.restart()
        self.assertTrue(r1.alive)
        cluster.close()
        self.assert_gone(cluster)

    def test_a_replica_that_dies_on_its_own_fails_the_module(self):
        cluster = self.start()
        r2 = cluster.replicas[1]
        os.kill(r2.pid, signal.SIGKILL)  # not through the harness: a crash
        wait_until(lambda: not r2.alive, "r2 ended")
        self.assert_close_fails(cluster, "replica r2", "exited on its own")

    def test_a_sanitizer_report_fails_the_module(self):
        cluster = self.start(FAKE_SERVER_LOG_ON_TERM="==7==ERROR: AddressSanitizer: "
                                                    "heap-use-after-free\n")
        self.assert_close_fails(cluster, "replica r1", "its log has ERROR: AddressSanitizer",
                                "heap-use-after-free")

    def test_a_replica_exiting_non_zero_on_sigterm_fails_the_module(self):
        cluster = self.start(FAKE_SERVER_EXIT_ON_TERM="1")
        self.assert_close_fails(cluster, "replica r1", "exited with status 1, not 0")


if __name__ == "__main__":
    unittest.main()
