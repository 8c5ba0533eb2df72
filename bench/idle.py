"""Idle cost (issue 20): the CPU an idle worker uses, on Tansu and on Apache Kafka.

Run:  python -m bench.idle [--seconds 30] [--broker tansu|kafka|both] [--sample]

- **tansu**: ``offhours run --coverage examples/coverage.yaml`` exactly as a user starts it
  (no broker configured: it starts the embedded Tansu broker as its own child process,
  the stream worker and the web server on a free port, memory store). The worker
  process (worker + web server in one event loop) and the broker child are measured
  separately.
- **kafka**: one Apache Kafka node (:class:`brokers.apache.KafkaServer`) and
  ``python -m streams.worker`` with the bench environment (:func:`bench.common.worker_env`
  for ``broker_flavour=kafka``: the production worker entry point, as ``deploy/`` runs
  it, with the bench's own topics and the in-memory store). The JVM is reported too,
  for context (it is not ours).

Ready and settled are events, not sleeps: ``offhours run`` prints ``ready`` once its
worker finished recovery, and ``/readyz`` answers 200; ``streams.worker`` prints
``READY`` and then ``ASSIGNED 0,1,2,3`` once the group gave it every events partition.
Then nothing is sent for ``--seconds`` and the CPU of each process is read from
``/proc/<pid>/stat`` (utime + stime, its threads included) at the start and at the
end of the window, plus that of any descendant it started (the embedded broker is
reported on its own line, not added to the worker). The figure is % of one core.

``--sample`` also runs the worker with a stack sampler (:func:`sampled_child`): a
thread that every 10 ms records the innermost frames of every other thread that is
not parked in an event loop's wait, and writes the counts when the worker stops. It
tells what the idle worker does with its CPU (the sampler's own cost is included in
that run's figure, so the CPU figures come from a run without it), and profiles the
worker's event loop thread (cProfile, from SIGUSR1 to SIGUSR2: the idle window only).

What an idle worker burns (2026-11-30, 20-30 s windows, 2 shared cores):

- the triage agent's ``stream.noack_take(500, within=5 ms)``: Faust's take loop wakes
  every 5 ms whether or not anything came, and each wake runs mode's ``wait_first``
  (two tasks made and cancelled). More than half of the event loop thread's profile, on
  both brokers: about 2.5 % of a core. The triage agent now takes with
  :func:`streams.transport.quiet_noack_take`, which waits for the first event without a
  timeout (the 5 ms window starts with it);
- on Tansu, the worker consumer's 25 ms fetch wait: Tansu holds an empty fetch for the
  whole wait, so an idle worker asked 40 times a second, which cost the broker about
  10 % of a core and the worker's consumer thread 3 %. Now 100 ms after 2 s without
  records (:class:`streams.transport.FetchWait`);
- the reconciler's three consumers kept fetching between passes (assigned aiokafka
  consumers prefetch); they now rest between passes (:meth:`streams.reconcile.Reconciler.run_pass`);
- what is left: Faust's consumer thread (heartbeats, its commit timer every 0.5 s, the
  fetch loop), the reconciliation pass every 5 s and the watchdog's check, each well
  under 1 %; in ``offhours run`` also the configuration store's consumer (edge), whose
  500 ms fetch wait Tansu holds in full.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    EXAMPLE_COVERAGE,
    ROOT,
    Target,
    broker_name,
    machine_line,
    run_settings,
    stop_child,
    targets_table,
    worker_env,
)

TARGET_SHARE = 2.0
"""% of one core an idle worker on Apache Kafka may use."""
READY_TIMEOUT = 180.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLES_ENV = "BENCH_IDLE_SAMPLES"
"""Where :func:`sampled_child` writes its counts (a path), when set."""


# -- /proc readings -----------------------------------------------------------------------


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` (all its threads) in clock ticks; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), after pid and comm


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (over all its threads)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = children(pid)
    while stack:
        child = stack.pop()
        out.append(child)
        stack += children(child)
    return out


def command_name(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """Per thread of ``pid``: (comm, utime + stime ticks)."""
    out: dict[int, tuple[str, int]] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                out[int(task.name)] = ((task / "comm").read_text().strip(), int(fields[11]) + int(fields[12]))
    return out


@dataclass
class Reading:
    """The CPU one process used over the idle window."""

    label: str
    pid: int
    seconds: float = 0.0
    ticks: int = 0
    threads: list[tuple[int, str, float]] = field(default_factory=list)
    """The busiest threads: (tid, comm, % of one core)."""

    @property
    def share(self) -> float:
        """% of one core over the window."""
        return 100.0 * self.ticks / CLK_TCK / self.seconds if self.seconds else 0.0


async def measure(processes: dict[str, tuple[int, list[int]]], seconds: float) -> list[Reading]:
    """CPU of each ``label: (pid, extra pids counted with it)`` over ``seconds`` of idling."""

    def snapshot() -> dict[str, tuple[int, dict[int, tuple[str, int]]]]:
        out = {}
        for label, (pid, extra) in processes.items():
            total = sum(t or 0 for t in (cpu_ticks(p) for p in (pid, *extra)))
            out[label] = (total, thread_ticks(pid))
        return out

    before, started = snapshot(), time.monotonic()
    await asyncio.sleep(seconds)  # the measurement window itself: nothing is sent
    after, elapsed = snapshot(), time.monotonic() - started
    readings = []
    for label, (pid, _extra) in processes.items():
        reading = Reading(label, pid, elapsed, after[label][0] - before[label][0])
        threads = []
        for tid, (comm, ticks) in after[label][1].items():
            used = ticks - before[label][1].get(tid, (comm, 0))[1]
            if used:
                threads.append((tid, comm, 100.0 * used / CLK_TCK / elapsed))
        reading.threads = sorted(threads, key=lambda t: -t[2])[:5]
        readings.append(reading)
    return readings


# -- the stack sampler (``--sample``) -------------------------------------------------------

IDLE_LEAVES = {("selectors.py", "select"), ("__init__.py", "run"), ("runners.py", "run"), ("threading.py", "wait"), ("queue.py", "get"), ("threading.py", "_wait_for_tstate_lock")}


def sampled_child(argv: Sequence[str]) -> int:
    """``python -m bench.idle --sampled MODULE ARGS...``: run ``MODULE`` as ``__main__`` with a stack sampler.

    Every 10 ms the sampler looks at every other thread; a thread whose innermost frame
    is an event loop's or a queue's wait is idle, any other counts one sample for its
    innermost three frames. The counts go to ``$BENCH_IDLE_SAMPLES`` at exit.
    """
    import atexit
    import cProfile
    import pstats
    import runpy

    counts: collections.Counter[str] = collections.Counter()
    polls = [0]
    profile = cProfile.Profile()

    def start_window(*_: object) -> None:
        counts.clear()
        polls[0] = 0
        profile.enable()  # in the main thread (signal handlers run there): the event loop's callbacks

    def end_window(*_: object) -> None:
        profile.disable()

    signal.signal(signal.SIGUSR1, start_window)
    signal.signal(signal.SIGUSR2, end_window)

    def sample() -> None:
        me = threading.get_ident()
        while True:
            time.sleep(0.01)
            polls[0] += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                leaf = (Path(frame.f_code.co_filename).name, frame.f_code.co_name)
                if leaf in IDLE_LEAVES:
                    continue
                names = []
                walk = frame
                while walk is not None and len(names) < 4:
                    names.append(f"{Path(walk.f_code.co_filename).name}:{walk.f_code.co_name}:{walk.f_lineno}")
                    walk = walk.f_back
                counts[" < ".join(names)] += 1

    def dump() -> None:
        path = os.environ.get(SAMPLES_ENV)
        if path:
            lines = [f"{polls[0]} polls of the other threads (not parked in a wait)"]
            lines += [f"{n}\t{stack}" for stack, n in counts.most_common(25)]
            text = io.StringIO()
            with contextlib.suppress(TypeError, ValueError):  # nothing profiled
                pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(35)
            lines += ["", "cProfile of the main thread over the window:", text.getvalue()]
            Path(path).write_text("\n".join(lines) + "\n")

    if os.environ.get(SAMPLES_ENV):
        atexit.register(dump)
        threading.Thread(target=sample, name="bench-sampler", daemon=True).start()
    module, *rest = argv
    sys.argv = [module, *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if os.environ.get(SAMPLES_ENV):
            dump()
        return int(exit_.code or 0)
    return 0


# -- the runs -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _lines(process: asyncio.subprocess.Process, until: asyncio.Event, wanted: Callable[[str], bool]) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        if wanted(raw.decode(errors="replace").strip()):
            until.set()


async def _window(
    process: asyncio.subprocess.Process, processes: dict[str, tuple[int, list[int]]], seconds: float, sample: Path | None
) -> list[Reading]:
    """:func:`measure`; with ``sample``, the child's main-thread profile runs over the same window."""
    if sample is not None:
        process.send_signal(signal.SIGUSR1)
    try:
        return await measure(processes, seconds)
    finally:
        if sample is not None:
            process.send_signal(signal.SIGUSR2)


def _prefix(sample: Path | None, env: dict[str, str]) -> list[str]:
    """How to start a module: plainly, or through :func:`sampled_child` (sampled)."""
    if sample is None:
        return [sys.executable, "-m"]
    env[SAMPLES_ENV] = str(sample)
    return [sys.executable, "-m", "bench.idle", "--sampled"]


async def idle_tansu(seconds: float, sample: Path | None = None) -> tuple[list[Reading], str]:
    """``offhours run`` with its embedded broker; readings of the service and of the broker."""
    directory = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    env.update(OFFHOURS_DATA_DIR=str(directory / "data"), OFFHOURS_WEB_PORT=str(port))
    command = [*_prefix(sample, env), "offhours", "run", "--coverage", str(EXAMPLE_COVERAGE)]
    stderr = (directory / "stderr").open("wb")
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    ready = asyncio.Event()
    reader = asyncio.create_task(_lines(process, ready, lambda line: line.startswith("ready")))
    try:
        await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
        await _until_ready(port)
        brokers = [p for p in descendants(process.pid) if command_name(p).startswith("tansu")]
        others = [p for p in descendants(process.pid) if p not in brokers]
        processes = {"offhours run (worker + web)": (process.pid, others)}
        for n, pid in enumerate(brokers):
            processes[f"embedded broker (Tansu){'' if n == 0 else f' {n + 1}'}"] = (pid, [])
        readings = await _window(process, processes, seconds, sample)
    finally:
        await stop_child(process)
        reader.cancel()
        stderr.close()
    return readings, "`offhours run --coverage examples/coverage.yaml` (embedded Tansu, memory store)"


async def _until_ready(port: int) -> None:
    """``/readyz`` answers 200 (the worker ready, the broker answering)."""
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).status)
            if status == 200:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError("/readyz never answered 200")


async def idle_kafka(seconds: float, sample: Path | None = None) -> tuple[list[Reading], str]:
    """One Apache Kafka node and ``python -m streams.worker`` with the bench environment."""
    from brokers.apache import KafkaServer

    server = KafkaServer()
    await asyncio.to_thread(server.start)
    try:
        run = f"idle-{uuid.uuid4().hex[:8]}"
        directory = Path(tempfile.mkdtemp(prefix="bench-idle-"))
        settings = run_settings(server.url, run, directory, flavour="kafka", coverage_file=EXAMPLE_COVERAGE)
        env = worker_env(settings, dict(os.environ))
        env["OFFHOURS_DELIVERIES_TOPIC"] = f"bench-{run}.deliveries"
        env["OFFHOURS_OPS__ACTIONS_TOPIC"] = f"bench-{run}.actions"
        prefix = _prefix(sample, env)
        stderr = (directory / "stderr").open("wb")
        process = await asyncio.create_subprocess_exec(
            *prefix, "streams.worker", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
        settled = asyncio.Event()
        everything = ",".join(str(p) for p in range(settings.partitions))
        reader = asyncio.create_task(_lines(process, settled, lambda line: line == f"ASSIGNED {everything}"))
        try:
            await asyncio.wait_for(settled.wait(), READY_TIMEOUT)
            processes = {"streams.worker": (process.pid, descendants(process.pid))}
            if server.pid is not None:
                processes["Apache Kafka (JVM, not ours)"] = (server.pid, [])
            readings = await _window(process, processes, seconds, sample)
        finally:
            await stop_child(process)
            reader.cancel()
            stderr.close()
    finally:
        await asyncio.to_thread(server.stop)
    return readings, "`python -m streams.worker` with the bench environment (broker_flavour=kafka, memory store)"


def report(by_broker: dict[str, tuple[list[Reading], str]], seconds: float) -> tuple[str, list[Target]]:
    lines = [
        "## Idle cost (issue 20)",
        "",
        f"Machine: {machine_line()}. Each worker ready and its group settled, then {seconds:g} s with no traffic; "
        "CPU from /proc (utime + stime, all threads and child processes), % of one core.",
        "",
        "| broker | process | what runs | idle CPU | busiest threads (tid comm %) |",
        "|---|---|---|---:|---|",
    ]
    targets: list[Target] = []
    for flavour, (readings, what) in by_broker.items():
        for r in readings:
            threads = ", ".join(f"{tid} {comm} {share:.1f}" for tid, comm, share in r.threads)
            lines.append(f"| {broker_name(flavour)} | {r.label} | {what if r is readings[0] else ''} | "
                         f"{r.share:.2f} % | {threads} |")
        worker = readings[0]
        if flavour == "kafka":
            targets.append(Target("idle worker, Apache Kafka", f"<= {TARGET_SHARE:g} % of a core",
                                  f"{worker.share:.2f} % ({seconds:g} s idle)", worker.share <= TARGET_SHARE))
        else:
            broker = next((r for r in readings[1:] if "Tansu" in r.label), None)
            measured = (f"service {worker.share:.2f} %" + (f", broker {broker.share:.2f} %" if broker else "")
                        + ": Tansu holds every empty fetch for its whole wait and the service's consumers "
                        "(worker, reconciler between its passes: none, configuration store) ask again at once")
            targets.append(Target("idle `offhours run`, embedded Tansu", "say what it costs and why",
                                  measured, True))
    lines += ["", targets_table(targets)]
    return "\n".join(lines), targets


async def run(
    *, seconds: float = 30.0, broker: str = "both", out=sys.stdout, sample: bool = False
) -> list[Target]:
    """Measure the idle cost on ``broker`` (tansu, kafka or both); print the section on ``out``."""
    kinds = ("tansu", "kafka") if broker == "both" else (broker,)
    by_broker: dict[str, tuple[list[Reading], str]] = {}
    for kind in kinds:
        print(f"[idle] {kind} ...", file=sys.stderr, flush=True)
        samples = Path(tempfile.mkdtemp(prefix="bench-idle-samples-")) / f"{kind}.txt" if sample else None
        by_broker[kind] = await (idle_tansu if kind == "tansu" else idle_kafka)(seconds, samples)
        if samples is not None and samples.exists():
            print(f"### stack samples, {kind} (idle worker)\n\n```\n{samples.read_text()}```\n", file=out, flush=True)
    text, targets = report(by_broker, seconds)
    print(text, file=out, flush=True)
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--sampled"]:
        return sampled_child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle window (default 30)")
    parser.add_argument("--broker", choices=("tansu", "kafka", "both"), default="both")
    parser.add_argument("--sample", action="store_true", help="also print where the idle worker's threads are (stack samples)")
    args = parser.parse_args(argv)
    asyncio.run(run(seconds=args.seconds, broker=args.broker, sample=args.sample))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
