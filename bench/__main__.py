"""All of issue 7's benchmarks in one run: ``python -m bench [--quick] [--broker tansu|kafka|both]``.

One broker serves the pipeline throughput (stages 1-3, :mod:`bench.pipeline`) and the
webhook latency (stage 4, :mod:`bench.latency`): the embedded Tansu (the default), one
Apache Kafka node (``--broker kafka``, :class:`brokers.apache.KafkaServer`) or both, one
after the other, with the stages 1-3 side by side at the end; each runs with the
service's settings for that broker (``Settings.broker_flavour``). The state scale
(stage 5, :mod:`bench.state`) needs no broker, nor do the console's pages
(:mod:`bench.console`: 20 teams, 10,000 open conversations, about 15 s), which run
after it; the coverage engine benchmark (:mod:`bench.coverage`) runs first when it is
there. The whole report goes to stdout as markdown, progress to stderr; a full run takes
about five minutes on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import time
from collections.abc import Sequence

from bench import console, latency, pipeline, state


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter loads (about 2 min)")
    parser.add_argument("--profile", action="store_true", help="also profile the offhours worker (stage 3)")
    parser.add_argument(
        "--broker", choices=("tansu", "kafka", "both"), default="tansu",
        help="the broker of stages 1-4: the embedded Tansu (default), one Apache Kafka node, or both in turn",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("# offhours benchmarks (issue 7)\n", flush=True)

    if importlib.util.find_spec("bench.coverage") is not None:
        from bench import coverage

        print("[bench] coverage engine ...", file=sys.stderr, flush=True)
        coverage.main(["--budget", "1" if args.quick else "3"])
        print(flush=True)

    async def with_broker() -> None:
        by_broker = {}
        for kind in ("tansu", "kafka") if args.broker == "both" else (args.broker,):
            print(f"[bench] broker {kind} ...", file=sys.stderr, flush=True)
            async with pipeline.started_broker(kind) as (url, flavour):
                by_broker[flavour] = await pipeline.run(
                    url, events=8000 if args.quick else 30000, profile=args.profile, flavour=flavour
                )
                print(flush=True)
                await latency.run(url, rates=(100, 500, 1000), seconds=4.0 if args.quick else 10.0, flavour=flavour)
                print(flush=True)
        if len(by_broker) > 1:
            print(pipeline.side_by_side(by_broker), flush=True)
            print(flush=True)

    asyncio.run(with_broker())
    print("[bench] state ...", file=sys.stderr, flush=True)
    state.run(100_000 if args.quick else 200_000, 300_000 if args.quick else 1_000_000)
    print(flush=True)
    print("[bench] console ...", file=sys.stderr, flush=True)
    console.run(requests=10 if args.quick else 30)
    print(f"\nTotal time: {time.perf_counter() - started:,.0f} s.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
