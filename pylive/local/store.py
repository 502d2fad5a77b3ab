"""A lean in-memory stand-in for one DynamoDB table, for the router in the local cloud.

It offers the slice of boto3's ``Table`` resource the router uses (``get_item``,
``put_item``, ``delete_item`` by partition key ``pk``), with the same return shapes, at a
fraction of the memory moto needs. Thread-safe: router containers run on several threads.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any


class MemoryTable:
    def __init__(self, key: str = "pk") -> None:
        self.key = key
        self._items: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _pk(self, key: Mapping[str, Any]) -> Any:
        try:
            return key[self.key]
        except KeyError:
            raise ValueError(f"the key must contain the partition key {self.key!r}") from None

    def get_item(self, *, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        with self._lock:
            item = self._items.get(self._pk(Key))
            return {"Item": copy.deepcopy(item)} if item is not None else {}

    def put_item(self, *, Item: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        with self._lock:
            self._items[self._pk(Item)] = copy.deepcopy(dict(Item))
        return {}

    def delete_item(self, *, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        with self._lock:
            self._items.pop(self._pk(Key), None)
        return {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
