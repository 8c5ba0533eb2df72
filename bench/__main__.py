"""All the benchmarks in one run, ending with issue 20's targets:
``python -m bench [--quick] [--broker tansu|kafka|both] [--only STAGE[,STAGE]]``.

Stages, in order (``--only`` picks some; the names are those of :data:`STAGES`):

- ``coverage``: the coverage engine against businesstimedelta (:mod:`bench.coverage`);
- ``pipeline``: worker throughput, stages 1-3 (:mod:`bench.pipeline`);
- ``latency``: webhook -> acknowledgment, one ``offhours run`` process (10 s per load)
  and the deployed shape, ``offhours ingest`` and one ``offhours run`` worker as two
  processes (60 s per load) (:mod:`bench.latency`);
- ``state``: bytes per open conversation, RocksDB at scale (:mod:`bench.state`);
- ``console``: the console's pages (:mod:`bench.console`);
- ``timers``: the promise timers at scale (:mod:`bench.timers`);
- ``idle``: what an idle worker costs (:mod:`bench.idle`);
- ``memory``: RSS per open conversation in a running worker and after retention
  (:mod:`bench.memory`).

``pipeline`` and ``latency`` run on one broker per ``--broker`` kind: the embedded Tansu
(the default), one Apache Kafka node (``--broker kafka``, :class:`brokers.apache.KafkaServer`)
or both in turn, with stages 1-3 side by side at the end; each with the service's
settings for that broker (``Settings.broker_flavour``). The others start what they need.
A module that is not there yet is reported as "not run (module missing)".

The report goes to stdout as markdown, progress to stderr; it ends with "## Issue 20
targets", one row per target of every stage that ran (met or missed). A full run takes
about 15 minutes on two cores (the deployed shape's 60 s loads are about 5 of them);
``--quick`` about 6.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from bench.common import Target, targets_table

STAGES = ("coverage", "pipeline", "latency", "state", "console", "timers", "idle", "memory")

MISSING_TARGETS = {
    "timers": [("promise timers at scale", "issue 20's timer targets")],
    "idle": [("idle worker", "issue 20's idle cost target")],
    "memory": [("RSS per open conversation, running worker", "issue 20's memory targets")],
    "pipeline": [("worker throughput", ">= 50% of the batched no-op Faust agent's events/s")],
}


def _module(name: str) -> ModuleType | None:
    """``bench.<name>``, or None when the module is not there (yet)."""
    if importlib.util.find_spec(f"bench.{name}") is None:
        return None
    return importlib.import_module(f"bench.{name}")


def _missing(stage: str) -> list[Target]:
    return [Target(name, wanted, "not run (module missing)", False) for name, wanted in MISSING_TARGETS[stage]]


def _failed(stage: str, exc: BaseException) -> list[Target]:
    return [Target(f"{stage} stage", "runs to the end", f"failed: {type(exc).__name__}: {exc}"[:200], False)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter loads (about 6 min)")
    parser.add_argument("--profile", action="store_true", help="also profile the offhours worker (stage 3)")
    parser.add_argument(
        "--broker", choices=("tansu", "kafka", "both"), default="tansu",
        help="the broker of the pipeline and latency stages: the embedded Tansu (default), "
        "one Apache Kafka node, or both in turn",
    )
    parser.add_argument(
        "--only", metavar="STAGE[,STAGE]",
        help=f"run only these stages ({', '.join(STAGES)}); default all",
    )
    args = parser.parse_args(argv)
    only = set(STAGES) if not args.only else {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(STAGES)
    if unknown:
        parser.error(f"--only: unknown stage(s) {', '.join(sorted(unknown))}; stages: {', '.join(STAGES)}")
    quick = args.quick
    started = time.perf_counter()
    targets: list[Target] = []
    print("# offhours benchmarks (issues 7 and 20)\n", flush=True)

    def stage(name: str, body: Callable[[ModuleType], list[Target] | None]) -> None:
        """Run one stage if chosen; its targets join the table (a failure is a row, not the end)."""
        if name not in only:
            return
        module = _module(name)
        if module is None:
            print(f"[bench] {name}: module missing", file=sys.stderr, flush=True)
            targets.extend(_missing(name) if name in MISSING_TARGETS else [])
            return
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            found = body(module) or []
            wrong = [item for item in found if not isinstance(item, Target)]
            if wrong:
                raise TypeError(f"stage {name} returned {type(wrong[0]).__name__}, not Target rows")
            targets.extend(found)
        except Exception as exc:  # one stage failing must not cost the report of the others
            print(f"[bench] {name} failed: {exc!r}", file=sys.stderr, flush=True)
            targets.extend(_failed(name, exc))
        print(flush=True)

    stage("coverage", lambda coverage: coverage.run(budget=1.0 if quick else 3.0))

    if only & {"pipeline", "latency"}:
        targets.extend(asyncio.run(with_broker(args, only)))

    stage("state", lambda state: state.run(100_000 if quick else 200_000, 300_000 if quick else 1_000_000))
    # The console's pages have issue 19's target, reported in its own section, not issue 20's.
    stage("console", lambda console: console.run(requests=10 if quick else 30) and None)
    stage("timers", lambda timers: _maybe_await(timers.run(**_quick_kwargs(timers.run, quick))))
    stage("idle", lambda idle: asyncio.run(idle.run(seconds=10.0 if quick else 30.0, broker="both")))
    stage("memory", lambda memory: asyncio.run(memory.run(conversations=5_000 if quick else 20_000)))

    print("## Issue 20 targets\n", flush=True)
    print(targets_table(targets), flush=True)
    print(f"\nTotal time: {time.perf_counter() - started:,.0f} s.", flush=True)
    return 0


def _quick_kwargs(run: Callable[..., object], quick: bool) -> dict[str, bool]:
    """``{"quick": quick}`` when ``run`` takes a ``quick`` argument, else nothing."""
    return {"quick": quick} if "quick" in inspect.signature(run).parameters else {}


def _maybe_await(value: object) -> list[Target]:
    """A stage's ``run`` may be a plain function or a coroutine function."""
    if asyncio.iscoroutine(value):
        return asyncio.run(value)
    return value  # type: ignore[return-value]


async def with_broker(args: argparse.Namespace, only: set[str]) -> list[Target]:
    """The pipeline and latency stages on each broker of ``--broker``; their targets."""
    from bench import latency, pipeline

    quick = args.quick
    targets: list[Target] = []
    by_broker = {}
    for kind in ("tansu", "kafka") if args.broker == "both" else (args.broker,):
        print(f"[bench] broker {kind} ...", file=sys.stderr, flush=True)
        async with pipeline.started_broker(kind) as (url, flavour):
            if "pipeline" in only:
                print("[bench] pipeline ...", file=sys.stderr, flush=True)
                try:
                    results = await pipeline.run(
                        url, events=8000 if quick else 30000, profile=args.profile, flavour=flavour
                    )
                    by_broker[flavour] = results
                    targets.extend(pipeline.targets(results, flavour))
                except Exception as exc:  # one stage failing must not cost the report of the others
                    print(f"[bench] pipeline failed: {exc!r}", file=sys.stderr, flush=True)
                    targets.extend(_failed("pipeline", exc))
                print(flush=True)
            if "latency" in only:
                for shape in ("single", "deployed"):
                    print(f"[bench] latency, {shape} ...", file=sys.stderr, flush=True)
                    try:
                        targets.append(_flavoured(await _latency(latency, shape, url, flavour, quick), flavour))
                    except Exception as exc:  # a child that did not start: a row, and the run goes on
                        print(f"[bench] latency, {shape} failed: {exc!r}", file=sys.stderr, flush=True)
                        targets.extend(_failed(f"latency, {shape}", exc))
                    print(flush=True)
    if len(by_broker) > 1:
        print(pipeline.side_by_side(by_broker), flush=True)
        print(flush=True)
    return targets


async def _latency(latency: ModuleType, shape: str, url: str, flavour: str, quick: bool) -> Target:
    """One shape of the latency stage: the single process (as ``offhours run``) or the deployed shape."""
    if shape == "single":
        single = await latency.run_deployed(
            url, rates=(100, 300, 500, 1000), seconds=4.0 if quick else 10.0, flavour=flavour, split=False
        )
        return latency.single_target(single)
    deployed = await latency.run_deployed(
        url, rates=(300, 500, 700, 1000), seconds=10.0 if quick else 60.0, flavour=flavour
    )
    return latency.deployed_target(deployed)


def _flavoured(target: Target, flavour: str) -> Target:
    """``target`` with its broker in the name (the latency stages run on each broker of the run)."""
    from bench.common import broker_name

    return Target(f"{target.name}, {broker_name(flavour)}", target.wanted, target.measured, target.met)


if __name__ == "__main__":
    raise SystemExit(main())
