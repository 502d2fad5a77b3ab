"""The router's in-memory table: boto3's shapes, and DynamoDB's read consistency."""

from __future__ import annotations

import pytest

from pylive.emulator.store import MemoryTable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eventually_consistent_reads_may_miss_a_recent_write() -> None:
    clock = Clock()
    table = MemoryTable(stale_reads=1.0, clock=clock)
    table.put_item(Item={"pk": "a", "v": 1})
    assert table.get_item(Key={"pk": "a"}) == {}  # not replicated yet
    assert table.get_item(Key={"pk": "a"}, ConsistentRead=True) == {"Item": {"pk": "a", "v": 1}}
    clock.now += 1.0
    assert table.get_item(Key={"pk": "a"}) == {"Item": {"pk": "a", "v": 1}}


def test_a_stale_read_sees_the_version_before_a_recent_update_or_delete() -> None:
    clock = Clock()
    table = MemoryTable(stale_reads=1.0, clock=clock)
    table.put_item(Item={"pk": "a", "v": 1})
    clock.now += 5
    table.put_item(Item={"pk": "a", "v": 2})
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == 1
    assert table.get_item(Key={"pk": "a"}, ConsistentRead=True)["Item"]["v"] == 2
    clock.now += 5
    table.delete_item(Key={"pk": "a"})
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == 2
    assert table.get_item(Key={"pk": "a"}, ConsistentRead=True) == {}
    assert len(table) == 0
    clock.now += 1.5
    assert table.get_item(Key={"pk": "a"}) == {}


def test_old_versions_are_dropped() -> None:
    clock = Clock()
    table = MemoryTable(stale_reads=1.0, clock=clock)
    for n in range(100):
        table.put_item(Item={"pk": "a", "v": n})
        clock.now += 0.5
    assert len(table._versions["a"]) <= 3
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == 98


def test_without_a_window_every_read_is_current() -> None:
    table = MemoryTable()
    table.put_item(Item={"pk": "a", "v": 1})
    assert table.get_item(Key={"pk": "a"}) == {"Item": {"pk": "a", "v": 1}}
    table.delete_item(Key={"pk": "a"})
    assert table._versions == {}


def test_consistent_read_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="ConsistentRead must be a bool"):
        MemoryTable().get_item(Key={"pk": "a"}, ConsistentRead="yes")
