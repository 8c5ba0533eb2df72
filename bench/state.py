"""Scale of conversation state (issue 7, stage 5): bytes per open conversation in memory,
and 1,000,000 conversations in RocksDB with bounded memory.

Run:  python -m bench.state [--conversations N] [--rocksdb N] [--quick]

The states are real :class:`triage.state.ConversationState` objects, shaped like the
triage leaves them (an acknowledged customer, sometimes routed, one to four processed
events remembered), stored as the ``conversations`` table stores them: the key is the
conversation id (bytes) and the value :meth:`ConversationState.to_bytes`. In memory
that is a dict of bytes to bytes (Faust's memory store); its size is the tracemalloc
delta of building it, divided by the conversations. RocksDB (``rocksdict``, as the
``rocksdb://`` store) gets the same records written in batches; this process's RSS is
printed every 100,000 conversations.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.common import SEED, WEEK_START, machine_line, mib, status_kib
from triage.state import RECENT_LIMIT, ConversationState

TARGET_BYTES = 1024
BATCH = 10_000
STEP = 100_000


def conversation_state(n: int, rng: random.Random) -> tuple[bytes, ConversationState]:
    """A realistic open conversation's key and state (seeded)."""
    customer = int(WEEK_START.timestamp()) + rng.randrange(7 * 24 * 3600)
    state = ConversationState(team=rng.choice(("care-it", "care-us")), customer_at=customer, ack_at=customer)
    if rng.random() < 0.3:
        state = ConversationState(
            team=state.team,
            customer_at=customer,
            ack_at=customer,
            routed_to=(rng.choice(("marta", "luca", "giulia")),),
            routed_at=customer,
        )
    for e in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        state = state.remember(f"fb:m_{n}_{e}", suppressed="duplicate" if e else None)
    return f"fb:PAGE_111:user_{n}".encode(), state


def worst_case_state(n: int) -> ConversationState:
    """A conversation with every field set and :data:`RECENT_LIMIT` events remembered."""
    state = ConversationState(
        team="care-it", status="answered", customer_at=1, ack_at=2, staff_at=3,
        staff_id="staff_member_42", routed_to=("marta", "luca"), routed_at=4,
    )
    for e in range(RECENT_LIMIT):
        state = state.remember(f"wa:wamid.HBgLMzkzNDc{n}_{e}", suppressed="agent_active", route_held=True)
    return state


def records(count: int, seed: int = SEED) -> Iterator[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    for n in range(count):
        key, state = conversation_state(n, rng)
        yield key, state.to_bytes()


def in_memory(count: int) -> tuple[float, float, int]:
    """(bytes per conversation in a dict, mean value bytes, worst-case value bytes)."""
    pairs = list(records(count))
    mean_value = sum(len(v) for _, v in pairs) / count
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = {}
    for key, value in pairs:
        # Fresh copies: what a store holds after decoding records off the wire.
        store[bytes(bytearray(key))] = bytes(bytearray(value))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store) == count
    worst = len(worst_case_state(0).to_bytes())
    return (after - before) / count, mean_value, worst


def in_rocksdb(count: int, out) -> dict[str, float]:
    """Write ``count`` conversations to a fresh RocksDB in batches; print RSS per step."""
    from rocksdict import Rdict, WriteBatch

    directory = Path(tempfile.mkdtemp(prefix="bench-rocksdb-"))
    rss_start = status_kib("VmRSS") or 0
    db = Rdict(str(directory / "conversations"))
    peak_delta = 0
    started = time.perf_counter()
    try:
        batch = WriteBatch()
        print("| conversations | RSS | RSS over start | seconds |", file=out)
        print("|---:|---:|---:|---:|", file=out)
        for n, (key, value) in enumerate(records(count), start=1):
            batch.put(key, value)
            if n % BATCH == 0 or n == count:
                db.write(batch)
                batch = WriteBatch()
            if n % STEP == 0 or n == count:
                rss = status_kib("VmRSS") or 0
                peak_delta = max(peak_delta, rss - rss_start)
                print(f"| {n:,} | {mib(rss)} | {mib(rss - rss_start)} | {time.perf_counter() - started:.1f} |", file=out)
        write_seconds = time.perf_counter() - started
        db.flush()
        rng = random.Random(SEED + 1)
        probes = [f"fb:PAGE_111:user_{rng.randrange(count)}".encode() for _ in range(20_000)]
        read_started = time.perf_counter()
        found = sum(1 for key in probes if db.get(key) is not None)
        read_seconds = time.perf_counter() - read_started
        db.close()
        disk = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "write_rate": count / write_seconds,
        "write_seconds": write_seconds,
        "read_rate": len(probes) / read_seconds,
        "found": found / len(probes),
        "disk_bytes": disk,
        "peak_delta_kib": peak_delta,
    }


def run(conversations: int, rocksdb: int, out=sys.stdout) -> None:
    """Stage 5; prints the report to ``out``. RocksDB goes first, so that its RSS
    readings start from a process that has not yet held the in-memory sample."""
    print("## Scale of conversation state (issue 7, stage 5)", file=out)
    print(file=out)
    print(f"Machine: {machine_line()}.", file=out)
    print(file=out)
    print(f"RocksDB, {rocksdb:,} conversations written in batches of {BATCH:,}:", file=out)
    print(file=out)
    figures = in_rocksdb(rocksdb, out)
    print(file=out)
    print(
        f"- RocksDB: {figures['write_rate']:,.0f} writes/s ({figures['write_seconds']:.1f} s), "
        f"{figures['read_rate']:,.0f} random reads/s ({figures['found']:.0%} found), "
        f"{figures['disk_bytes'] / rocksdb:,.0f} bytes per conversation on disk "
        f"({figures['disk_bytes'] / 1024 / 1024:,.0f} MiB), RSS growth at most "
        f"{mib(int(figures['peak_delta_kib']))} over the run",
        file=out,
    )
    per_conversation, mean_value, worst = in_memory(conversations)
    met = "met" if per_conversation <= TARGET_BYTES else "MISSED"
    print(
        f"- in memory (dict of key -> ConversationState bytes, {conversations:,} conversations): "
        f"**{per_conversation:,.0f} bytes per open conversation** (target <= {TARGET_BYTES} bytes: {met}); "
        f"mean value {mean_value:,.0f} bytes; the worst case ({RECENT_LIMIT} events remembered, every "
        f"field) is a {worst}-byte value, about {per_conversation - mean_value + worst:,.0f} bytes per conversation",
        file=out,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=None, help="in-memory sample (default 200000)")
    parser.add_argument("--rocksdb", type=int, default=None, help="conversations in RocksDB (default 1000000)")
    parser.add_argument("--quick", action="store_true", help="100,000 in memory and 300,000 in RocksDB")
    args = parser.parse_args(argv)
    conversations = args.conversations or (100_000 if args.quick else 200_000)
    rocksdb = args.rocksdb or (300_000 if args.quick else 1_000_000)
    run(conversations, rocksdb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
