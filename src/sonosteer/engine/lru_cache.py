"""A small least-recently-used map, for prompt embeddings and noise tensors keyed by prompt or seed."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Maps keys to values made by `make(key)`, keeping the `capacity` most recently used.

    `misses` counts calls to `make`, so callers and tests can see that a key is computed once.
    """

    def __init__(self, make: Callable[[K], V], capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._make = make
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self.misses = 0

    def get(self, key: K) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._make(key)
        self.misses += 1
        self._items[key] = value
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
