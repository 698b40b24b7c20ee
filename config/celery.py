"""The Celery application: `celery -A config worker` / `celery -A config beat`."""

import logging
import os

from celery import Celery, signals

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


@signals.worker_ready.connect
def serve_worker_metrics(**kwargs) -> None:
    """With JIFEN_WORKER_METRICS_PORT, the worker's main process serves this host's processes' metrics
    (a worker host without a web process; docs/production.md, "Metrics")."""
    from django.conf import settings

    if settings.JIFEN_WORKER_METRICS_PORT:
        from config.prometheus import start_worker_exporter

        start_worker_exporter(settings.JIFEN_WORKER_METRICS_PORT)


@signals.worker_process_shutdown.connect
def forget_live_gauges(pid=None, **kwargs) -> None:
    """A pool process ends: prometheus_client's multiprocess bookkeeping (its counters stay counted)."""
    from config.prometheus import mark_process_dead

    mark_process_dead(pid or os.getpid())


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_lines_when_asked(logger: logging.Logger, **kwargs) -> None:
    """With LOG_FORMAT=json, Celery's own lines are JSON too.

    A worker or beat takes over the root logger (`worker_hijack_root_logger`, on by default) with a
    text handler of its own, and the task logger gets another: their lines (a worker ready, a task
    received, a task failed with its traceback) would stay text among the JSON ones. Only the
    handlers' formatter changes, so `--loglevel` and Celery's capture of stray prints still work.
    What Celery prints rather than logs (its start-up banner, "Warm shutdown") stays text: run
    `celery -A config -q worker` (or beat) to leave the banner out.
    """
    from django.conf import settings

    if settings.LOG_FORMAT != "json":
        return
    from celery.utils.log import get_multiprocessing_logger

    from apps.core.log_context import LogContextFilter
    from apps.core.log_format import JsonFormatter

    # The pool's own logger (a child process that died) is set up with the root logger, unannounced.
    pool_logger = get_multiprocessing_logger() if logger is logging.getLogger() else None
    for handler in [*logger.handlers, *(pool_logger.handlers if pool_logger else ())]:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(LogContextFilter())
