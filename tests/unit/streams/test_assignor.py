"""How Faust's partition assignor shares the input partitions among workers.

deploy/README.md ("Scaling") tells operators to run a number of workers that divides
the partition count, and the failover tests accept a worker holding nothing. Both rest
on what these tests show: Faust's assignor (with the standby replica Faust keeps for
each table by default) is sticky up to a share of ``ceil(partitions / workers)``, so
a worker that joins after the others split the partitions may get none of them. When
the workers divide the partitions the share is exact and every worker gets its part.
"""

from __future__ import annotations

from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor

from streams.app import faust_options
from streams.settings import Settings


def assign(current: dict[str, set[int]], partitions: int, replicas: int) -> dict[str, list[int]]:
    """The active partitions per worker after a rebalance from ``current``."""
    clients = {
        name: CopartitionedAssignment(actives=set(held), standbys=set(), topics={"events"})
        for name, held in current.items()
    }
    result = CopartitionedAssignor({"events"}, clients, partitions, replicas).get_assignment()
    return {name: sorted(assignment.actives) for name, assignment in result.items()}


def standby_replicas() -> int:
    """The standby replicas our workers run with: Faust's default unless faust_options sets it."""
    return int(faust_options(Settings()).get("table_standby_replicas", 1))


class TestAssignor:
    def test_our_workers_keep_a_standby_replica(self) -> None:
        assert 1 == standby_replicas()

    def test_a_third_worker_joining_four_partitions_split_two_and_two_may_get_none(self) -> None:
        got = assign({"a": {0, 2}, "b": {1, 3}, "late": set()}, partitions=4, replicas=standby_replicas())
        assert {"a": [0, 2], "b": [1, 3], "late": []} == got

    def test_a_third_worker_joining_six_partitions_gets_its_two(self) -> None:
        got = assign({"a": {0, 2, 4}, "b": {1, 3, 5}, "late": set()}, partitions=6, replicas=standby_replicas())
        assert [2, 2, 2] == [len(held) for held in got.values()]
        assert list(range(6)) == sorted(p for held in got.values() for p in held)
