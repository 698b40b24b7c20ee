"""The Celery application: `celery -A config worker` / `celery -A config beat`."""

import logging
import os

from celery import Celery

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
