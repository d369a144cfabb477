"""count() windows across replicas: each replica counts the events it evaluated and, every second,
saves its windows and reads the others' (docs/scale.md), so a count(...) trigger fires on a
replica that saw none of the events itself."""

import time
import unittest

from tests import support

from cluster import Cluster, request_id, wait_until


class CountWindowsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=3)
        cls.addClassCleanup(cls.cluster.close)

    def test_retries_reported_to_two_replicas_fire_retry_storm_on_the_third(self):
        cluster = self.cluster
        r1, r2, r3 = cluster.replicas
        tenant = support.new_tenant()

        def retries(n: int) -> dict:
            return support.allow_request(tenant, workflow_id="sync", request_id=request_id(),
                                         signals={"retry": n})

        # 2 + 2 retries of one workflow within 10 minutes: retry-storm is count("retry", "10m")
        # > 3. Neither replica needs to have fired; the third saw none of them.
        for replica in (r1, r2):
            out = cluster.evaluate(retries(2), replica)
            self.assertTrue(out.answered, out)
        probe = cluster.evaluate(retries(0), r3)
        self.assertTrue(probe.answered, probe)

        def fired_on_r3() -> bool:
            out = cluster.evaluate(retries(0), r3)  # zero events: counts nothing itself
            self.assertTrue(out.answered, out)
            fired = [f.trigger_id for f in out.response.fired]
            return "retry-storm" in fired

        wait_until(fired_on_r3, "retry-storm fires on replica 3 from the others' retries")

    def test_a_replica_does_not_count_its_own_events_twice(self):
        cluster = self.cluster
        r1, r2, _ = cluster.replicas
        tenant = support.new_tenant()

        def retries(workflow: str, n: int) -> dict:
            return support.allow_request(tenant, workflow_id=workflow, request_id=request_id(),
                                         signals={"retry": n})

        # 3 retries on r1: not > 3, and it must stay 3 after r1 saved its windows and read the
        # others' (its own read back would make 6).
        out = cluster.evaluate(retries("own", 3), r1)
        self.assertEqual(out.verdict, "VERDICT_ALLOW", out)
        # A canary on another workflow proves r1 has exchanged windows since: 4 retries on r2.
        cluster.evaluate(retries("canary", 4), r2)
        wait_until(lambda: any(f.trigger_id == "retry-storm" for f in
                               cluster.evaluate(retries("canary", 0), r1).response.fired),
                   "replica 1 counts replica 2's canary retries")
        time.sleep(2.5)  # two more exchanges
        out = cluster.evaluate(retries("own", 0), r1)
        self.assertEqual(out.verdict, "VERDICT_ALLOW", out)
        self.assertEqual([f.trigger_id for f in out.response.fired], [], out)


if __name__ == "__main__":
    unittest.main()
