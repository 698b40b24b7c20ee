"""How the web process hands an event to the workers, guarded by timeouts and a circuit breaker.

With Redis as the broker, one EVALSHA into the inbox (see `inbox.py`); with any other broker
(the embedded filesystem transport), a plain Celery publish of `process_event`. Either way a
failure, or an open breaker, raises HandoffUnavailable and the caller keeps the event in the outbox.
"""

import logging
import threading

from django.conf import settings

from apps.tracking.breaker import CircuitBreaker
from apps.tracking.inbox import RedisInbox

logger = logging.getLogger(__name__)


class HandoffUnavailable(Exception):
    """The broker cannot take the event now."""


def uses_inbox() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def web_inbox() -> RedisInbox:
    """The inbox client with the web process's short timeouts."""
    return RedisInbox(
        settings.CELERY_BROKER_URL,
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        connect_timeout_s=settings.JIFEN_HANDOFF_TIMEOUT_S,
        socket_timeout_s=settings.JIFEN_HANDOFF_TIMEOUT_S,
    )


def worker_inbox() -> RedisInbox:
    """The inbox client for workers and beat, which can afford to wait longer."""
    return RedisInbox(
        settings.CELERY_BROKER_URL, queue=settings.CELERY_TASK_DEFAULT_QUEUE, connect_timeout_s=2.0, socket_timeout_s=5.0
    )


class Handoff:
    def __init__(self) -> None:
        self.inbox = web_inbox() if uses_inbox() else None
        self.breaker = CircuitBreaker(probe=self._probe, probe_every_s=settings.JIFEN_BREAKER_OPEN_S)

    def _probe(self) -> None:
        """Raise unless the broker answers now: the breaker's background thread calls it, never a request."""
        if self.inbox is not None:
            self.inbox.ping()  # the hand-off's own client and pool, as the next push will use them
            return
        from celery import current_app

        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=settings.JIFEN_HANDOFF_TIMEOUT_S)

    def close(self) -> None:
        self.breaker.stop()

    def _publish(self, payloads: list[dict]) -> None:
        if self.inbox is not None:
            if len(payloads) == 1:
                self.inbox.push(payloads[0])
            else:
                self.inbox.push_many(payloads)
            return
        from apps.tracking.tasks import process_event

        for payload in payloads:
            process_event.apply_async(args=[payload], retry=False)

    def send(self, payloads: list[dict]) -> None:
        """Hand the events over, or raise HandoffUnavailable without waiting when the breaker is open.

        While it is open nothing here touches the broker: the breaker's own thread probes it.
        """
        if not self.breaker.allow():
            raise HandoffUnavailable("circuit open after a recent broker failure")
        try:
            self._publish(payloads)
        except Exception as exc:
            self.breaker.failed()
            logger.warning(
                "broker hand-off failed (%s: %s); circuit open, probed every %ss",
                type(exc).__name__,
                exc,
                self.breaker.probe_every_s,
            )
            raise HandoffUnavailable(str(exc)) from exc


_lock = threading.Lock()
_handoff: Handoff | None = None


def handoff() -> Handoff:
    """The process's hand-off, built on first use (after settings and fork)."""
    global _handoff
    if _handoff is None:
        with _lock:
            if _handoff is None:
                _handoff = Handoff()
    return _handoff


def handoff_reset() -> None:
    """Forget the process's hand-off (tests that change the broker or the breaker)."""
    global _handoff
    with _lock:
        if _handoff is not None:
            _handoff.close()
        _handoff = None
