"""A per-process cache of a table-derived value, rebuilt when the table's change stamp moves.

The stamp is (latest updated_at, highest id): both come from an index, so checking costs the
same however many rows there are, and a process checks at most once per `refresh_s`. A value
read from more than the one table passes `also`: a further stamp, which must move whenever one
of those other tables changes in a way the value depends on.
"""

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import models
from django.db.models import Max

T = TypeVar("T")


class StampedCache(Generic[T]):
    def __init__(
        self,
        model: type[models.Model],
        build: Callable[[], T],
        refresh_s: Callable[[], float],
        also: Callable[[], tuple] | None = None,
    ):
        self._model = model
        self._also = also
        self._build = build
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._stamp: tuple | None = None
        self._checked_at = 0.0

    def _fresh(self, now: float) -> bool:
        return self._value is not None and now - self._checked_at < self._refresh_s()

    def get(self) -> T:
        now = time.monotonic()
        if self._fresh(now):
            return self._value
        with self._lock:
            if self._fresh(now):
                return self._value
            # Soft deletes and status changes move updated_at; a new row moves the highest id.
            stamp = tuple(self._model.all_objects.aggregate(changed=Max("updated_at"), newest=Max("id")).values())
            if self._also is not None:
                stamp += self._also()
            if self._value is None or stamp != self._stamp:
                self._value = self._build()
                self._stamp = stamp
            self._checked_at = now
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None
            self._stamp = None
