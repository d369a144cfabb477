"""replicas_propagation.py: how late another replica learns of a change (issue 20's bound).

Two agate-servers on one throwaway PostgreSQL (tests/replicas/cluster.py); a WatchCases stream on
replica 2; N times, a BLOCK for a new item through replica 1 (each opens a case, committed before
the answer): the time from replica 1's answer to replica 2's "opened" event is an upper bound of
commit -> visible on another replica (the same absorption that puts scopes in force on its ALLOW
path). Prints p50 / p90 / p99 / max in ms for each --postgres-poll given.

  PYTHONPATH=sdk/python:tests/replicas AGATE_SERVER=build/server/agate-server \\
    AGATE_CLI=build/client/agate /usr/bin/python3 bench/replicas_propagation.py [N] [POLL...]
"""

import queue
import sys
import threading
import time

import grpc

from cluster import Cluster, request_id
from tests import support


def measure(poll: str, n: int) -> list[float]:
    cluster = Cluster(replicas=2, extra_args=["--postgres-poll", poll])
    try:
        cluster.wait_ready()
        r1, r2 = cluster.replicas
        events: queue.Queue = queue.Queue()
        call = r2.client.watch_cases(tenant_id="bench")

        def read():
            try:
                for e in call:
                    for x in [e, *e.more]:
                        events.put((time.monotonic(), x))
            except grpc.RpcError:
                pass

        threading.Thread(target=read, daemon=True).start()
        time.sleep(1)  # the stream is open
        samples = []
        for i in range(n):
            out = cluster.evaluate(support.block_request("bench", item_id=f"item-{i}",
                                                         request_id=request_id()), r1)
            answered = time.monotonic()
            assert out.answered, out
            case_id = out.response.case_id
            while True:
                at, e = events.get(timeout=30)
                if e.case.id == case_id and e.transition.event == "opened":
                    samples.append((at - answered) * 1000)
                    break
            time.sleep(0.013)  # not in step with the poll
        call.cancel()
        return samples
    finally:
        cluster.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    polls = sys.argv[2:] or ["50ms"]
    for poll in polls:
        s = sorted(measure(poll, n))
        q = lambda p: s[min(len(s) - 1, int(p * len(s)))]
        print(f"--postgres-poll {poll}: {len(s)} cases, replica 1 answered -> replica 2's watch "
              f"saw it: p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, p99 {q(0.99):.1f} ms, "
              f"max {s[-1]:.1f} ms")


if __name__ == "__main__":
    main()
