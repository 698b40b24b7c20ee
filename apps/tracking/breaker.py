"""A per-process circuit breaker for the web process's broker calls (SPEC G2)."""

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# The probe's pace when JIFEN_BREAKER_OPEN_S is 0: a refused connection fails at once, and a probe
# without a pause would spin a core for as long as the broker is down.
MIN_PROBE_INTERVAL_S = 0.05


class CircuitBreaker:
    """After a failure, calls are refused until a background probe finds the broker answering.

    No caller ever waits on the broker while the breaker is open: `allow()` costs a flag read (and
    a thread liveness check), and the probe runs in a daemon thread of its own, every `probe_every_s`,
    closing the breaker when `probe()` returns without raising. Only the first failing call pays
    the broker's timeout; at any traffic, even one request every few seconds, no request pays another.
    """

    def __init__(self, *, probe: Callable[[], object], probe_every_s: float, name: str = "broker"):
        self.probe = probe
        self.probe_every_s = max(probe_every_s, MIN_PROBE_INTERVAL_S)
        self.name = name
        self._lock = threading.Lock()
        self._open = False
        self._opened_at = 0.0
        self._prober: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """True when calls may go to the broker; never blocks on it."""
        if not self._open:
            return True
        # A fork (gunicorn, Celery's prefork pool) copies an open breaker but not its thread.
        if self._prober is None or not self._prober.is_alive():
            self._start_prober()
        return False

    def failed(self) -> None:
        """A call failed: refuse calls from now on, and probe in the background until the broker answers."""
        with self._lock:
            if not self._open:
                self._open = True
                self._opened_at = time.monotonic()
        self._start_prober()

    def stop(self) -> None:
        """End the probe thread (the breaker's owner is being replaced); the breaker stays as it is."""
        self._stopped.set()

    def _start_prober(self) -> None:
        with self._lock:
            if self._stopped.is_set() or not self._open or (self._prober is not None and self._prober.is_alive()):
                return
            self._prober = threading.Thread(target=self._probe_until_closed, name=f"{self.name}-probe", daemon=True)
            self._prober.start()

    def _probe_until_closed(self) -> None:
        while not self._stopped.wait(self.probe_every_s):
            try:
                self.probe()
            except Exception as exc:
                logger.debug("%s probe failed (%s: %s); circuit stays open", self.name, type(exc).__name__, exc)
                continue
            with self._lock:
                self._open = False
                down_s = time.monotonic() - self._opened_at
            logger.warning("%s answers again: circuit closed after %.1f s", self.name, down_s)
            return
