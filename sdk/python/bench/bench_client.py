#!/usr/bin/python3
"""bench_client: what the Python SDK costs, and what one Python process can push through it.

(a) Overhead: agate.Client.evaluate against a raw grpcio stub call (the generated AgateStub) on
    the same channel, sequentially, against agate-noop-server (a constant answer, so the
    server's share is as small and steady as it gets). The two are interleaved in blocks so
    drift hits both; mean and p50 per call and their difference. Also the wrapper alone (the
    RPC replaced by a function returning a constant response) and the dict-input path.
(b) Throughput: agate.aio.Client with C concurrent calls from one process for D seconds,
    against agate-noop-server and against agate-server (the bundled matrix, memory store, a
    fresh request_id per call so every call is a real decision), in the same run.

Not a test: it asserts nothing beyond every call being answered. Run from the repository root:

    PYTHONPATH=sdk/python /usr/bin/python3 sdk/python/bench/bench_client.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # sdk/python: agate, tests

import agate  # noqa: E402
from agate.v1 import agate_pb2 as pb  # noqa: E402
from tests.support import MATRIX, ServerProcess  # noqa: E402

BASELINE = "/opt/agate-baseline/bin"


def allow_message(request_id: str) -> pb.EvaluateRequest:
    return pb.EvaluateRequest(request_id=request_id, tenant_id="bench",
                              action=pb.Action(type="send_reply", customer_facing=True),
                              model=pb.Model(confidence=0.93))


ALLOW_DICT = {"tenant_id": "bench", "action": {"type": "send_reply", "customer_facing": True},
              "model": {"confidence": 0.93}}


def timed(call, n: int) -> list[float]:
    """timed runs call() n times and returns each duration in microseconds."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        call()
        out.append((clock() - start) / 1000.0)
    return out


def summary(samples: list[float]) -> str:
    return f"mean {statistics.fmean(samples):7.1f} us   p50 {statistics.median(samples):7.1f} us"


def overhead(address: str, iterations: int, blocks: int) -> None:
    client = agate.Client(address, deadline=1.0)
    stub, message = client.stub, allow_message("bench-overhead")
    raw = lambda: stub.Evaluate(message, timeout=1.0)  # noqa: E731
    sdk = lambda: client.evaluate(message)  # noqa: E731
    sdk_dict = lambda: client.evaluate(ALLOW_DICT)  # noqa: E731
    for call in (raw, sdk, sdk_dict):  # connect and warm up
        timed(call, 500)
    per_block = max(iterations // blocks, 1)
    samples: dict[str, list[float]] = {"raw": [], "sdk": [], "dict": []}
    for _ in range(blocks):
        samples["raw"] += timed(raw, per_block)
        samples["sdk"] += timed(sdk, per_block)
        samples["dict"] += timed(sdk_dict, per_block)
    counters = client.counters()
    assert counters.failed_closed == 0 and counters.error == 0, counters

    # The wrapper alone: the same evaluate with the RPC replaced by a constant answer.
    response = pb.EvaluateResponse(verdict=pb.VERDICT_ALLOW)
    client._evaluate = lambda request, timeout, metadata: response
    alone = timed(sdk, iterations)
    alone_dict = timed(sdk_dict, iterations)
    client.close()

    raw_mean, sdk_mean = statistics.fmean(samples["raw"]), statistics.fmean(samples["sdk"])
    raw_p50, sdk_p50 = statistics.median(samples["raw"]), statistics.median(samples["sdk"])
    print(f"(a) overhead per call, {blocks} interleaved blocks, {per_block * blocks} calls each,"
          f" against agate-noop-server at {address}")
    print(f"    raw stub.Evaluate(message)       {summary(samples['raw'])}")
    print(f"    client.evaluate(message)         {summary(samples['sdk'])}")
    print(f"    difference                       mean {sdk_mean - raw_mean:7.1f} us   "
          f"p50 {sdk_p50 - raw_p50:7.1f} us")
    print(f"    client.evaluate(dict)            {summary(samples['dict'])}")
    print(f"    wrapper alone, message (no RPC)  {summary(alone)}")
    print(f"    wrapper alone, dict (no RPC)     {summary(alone_dict)}")


async def throughput(address: str, concurrency: int, duration: float,
                     fresh_ids: bool) -> tuple[float, agate.Counters, dict[str, int]]:
    async with agate.aio.Client(address, deadline=2.0) as client:
        verdicts: dict[str, int] = {}
        counter = 0

        async def worker(stop_at: float) -> None:
            nonlocal counter
            while time.perf_counter() < stop_at:
                counter += 1
                request_id = f"bench-{os.getpid()}-{counter}" if fresh_ids else "bench-same"
                decision = await client.evaluate(allow_message(request_id))
                verdicts[decision.verdict] = verdicts.get(decision.verdict, 0) + 1

        # Warm up (connect), then measure.
        await asyncio.gather(*(worker(time.perf_counter() + 0.5) for _ in range(concurrency)))
        before = client.counters()
        verdicts.clear()
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + duration) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        after = client.counters()
        done = agate.Counters(*(a - b for a, b in zip(
            (after.ok, after.escalated, after.error, after.failed_closed, after.failed_open),
            (before.ok, before.escalated, before.error, before.failed_closed,
             before.failed_open))))
        return (done.ok + done.failed_closed) / elapsed, done, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("AGATE_SERVER",
                                                           f"{BASELINE}/agate-server"))
    parser.add_argument("--noop-server", default=os.environ.get(
        "AGATE_NOOP_SERVER", f"{BASELINE}/agate-noop-server"))
    parser.add_argument("--iterations", type=int, default=20000,
                        help="sequential calls per variant in (a)")
    parser.add_argument("--blocks", type=int, default=10, help="interleaved blocks in (a)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight in (b)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server in (b)")
    args = parser.parse_args()

    print(f"python {platform.python_version()}, grpcio {agate.client.grpc.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with ServerProcess([args.noop_server, "--listen", "127.0.0.1:0"]) as noop, \
            ServerProcess([args.server, "--matrix", str(MATRIX), "--listen", "127.0.0.1:0",
                           "--store", "memory"]) as server:
        overhead(noop.address, args.iterations, args.blocks)
        print(f"(b) one process, agate.aio.Client, {args.concurrency} calls in flight, "
              f"{args.duration:g} s each")
        for name, address, fresh in (("agate-noop-server", noop.address, False),
                                     ("agate-server (fresh request_ids)", server.address, True)):
            rate, done, verdicts = asyncio.run(
                throughput(address, args.concurrency, args.duration, fresh))
            print(f"    {name:34s} {rate:8.0f} req/s   verdicts {verdicts}   "
                  f"failed_closed {done.failed_closed}   errors {done.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
