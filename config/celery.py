"""The Celery application: `celery -A config worker` / `celery -A config beat`."""

import logging
import os

from celery import Celery
from celery.signals import worker_process_shutdown, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("jifen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class RoutineTicksAtDebug(logging.Filter):
    """Beat's periodic tasks log at DEBUG: sent, received and succeeded, every few seconds, they
    would bury the request lines at INFO. What they find worth saying (an outbox that will not
    drain, batches put back) their services log themselves at WARNING.

    A filter on Celery's own loggers lowers the record's level; the record then goes out only when
    that logger is enabled for DEBUG (`--loglevel DEBUG`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _task_name(record) not in _routine_tasks():
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _task_name(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, dict):  # the worker's "Task %(name)s[%(id)s] received / succeeded"
        return args.get("name")
    if isinstance(args, tuple) and len(args) == 2:  # beat's "Scheduler: Sending due task %s (%s)"
        return args[1]
    return None


def _routine_tasks() -> set[str]:
    from django.conf import settings

    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


for _logger in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_logger).addFilter(RoutineTicksAtDebug())


@worker_ready.connect
def serve_worker_metrics(**kwargs) -> None:
    """With JIFEN_WORKER_METRICS_PORT, the worker's main process serves this host's processes' metrics
    (a worker host without a web process; docs/production.md, "Metrics")."""
    from django.conf import settings

    if settings.JIFEN_WORKER_METRICS_PORT:
        from config.prometheus import start_worker_exporter

        start_worker_exporter(settings.JIFEN_WORKER_METRICS_PORT)


@worker_process_shutdown.connect
def forget_live_gauges(pid=None, **kwargs) -> None:
    """A pool process ends: prometheus_client's multiprocess bookkeeping (its counters stay counted)."""
    from config.prometheus import mark_process_dead

    mark_process_dead(pid or os.getpid())
