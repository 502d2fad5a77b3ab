"""A lean in-memory stand-in for one DynamoDB table, for the router in the local cloud.

It offers the slice of boto3's ``Table`` resource the router uses (``get_item``,
``put_item``, ``delete_item`` by partition key ``pk``), with the same return shapes, at a
fraction of the memory moto needs. Thread-safe: router containers run on several threads.

Reads are eventually consistent unless ``ConsistentRead=True``, as in DynamoDB: "When
issuing eventually consistent reads to a DynamoDB table [...] the responses may not reflect
the results of a recently completed write operation"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
With ``stale_reads=S`` (seconds) an eventually consistent read sees the table as it was ``S``
seconds ago, the most stale answer that DynamoDB allows within that window, so code that
reads right after the write it depends on fails here as it may on AWS. A strongly
consistent read always sees the latest write.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

Item = dict[str, Any]


class MemoryTable:
    def __init__(
        self,
        key: str = "pk",
        *,
        stale_reads: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.stale_reads = stale_reads
        self._clock = clock
        # Per key, its versions oldest first: (written at, item or None once deleted).
        self._versions: dict[Any, list[tuple[float, Item | None]]] = {}
        self._lock = threading.Lock()

    def _pk(self, key: Mapping[str, Any]) -> Any:
        try:
            return key[self.key]
        except KeyError:
            raise ValueError(f"the key must contain the partition key {self.key!r}") from None

    def get_item(
        self, *, Key: Mapping[str, Any], ConsistentRead: bool = False, **_: Any
    ) -> dict[str, Any]:
        if not isinstance(ConsistentRead, bool):
            raise ValueError(f"ConsistentRead must be a bool, not {type(ConsistentRead).__name__}")
        with self._lock:
            versions = self._versions.get(self._pk(Key), [])
            item = self._read(versions, ConsistentRead)
            return {"Item": copy.deepcopy(item)} if item is not None else {}

    def put_item(self, *, Item: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self._write(self._pk(Item), copy.deepcopy(dict(Item)))
        return {}

    def delete_item(self, *, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self._write(self._pk(Key), None)
        return {}

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for versions in self._versions.values() if versions[-1][1] is not None)

    def _read(self, versions: list[tuple[float, Item | None]], consistent: bool) -> Item | None:
        if not versions:
            return None
        if consistent or self.stale_reads <= 0:
            return versions[-1][1]
        seen_at = self._clock() - self.stale_reads
        for written, item in reversed(versions):
            if written <= seen_at:
                return item
        return None  # every write is newer than what this read sees: the key did not exist

    def _write(self, pk: Any, item: Item | None) -> None:
        with self._lock:
            now = self._clock()
            versions = self._versions.setdefault(pk, [])
            versions.append((now, item))
            # Keep the newest version a stale read can still see, and everything after it.
            horizon = now - self.stale_reads
            while len(versions) > 1 and versions[1][0] <= horizon:
                del versions[0]
            if len(versions) == 1 and item is None and self.stale_reads <= 0:
                del self._versions[pk]
