"""A per-process circuit breaker for the web process's broker calls (SPEC G2)."""

import threading
import time


class CircuitBreaker:
    """After a failure, calls are refused for `open_s` seconds; then one probe call is let through.

    While open, a request costs nothing but a clock read: the broker's timeouts are paid by the
    first failing call and by one probe per `open_s`, never by every request.
    """

    def __init__(self, open_s: float):
        self.open_s = open_s
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until > 0.0

    def allow(self) -> bool:
        if self._open_until == 0.0:
            return True
        with self._lock:
            if self._probing or time.monotonic() < self._open_until:
                return False
            self._probing = True  # this caller is the probe; the others keep skipping
            return True

    def succeeded(self) -> None:
        if self._open_until:
            with self._lock:
                self._open_until = 0.0
                self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.open_s
            self._probing = False
