"""One JSON object a line for the console (`LOG_FORMAT=json`), for log collectors and `jq`.

Each line: `time` (ISO 8601, UTC, milliseconds), `level`, `logger`, `message`, `process` (the
pid), then the context fields of `apps.core.log_context` that are set, and `exception` (the
traceback as text) when there is one. orjson writes it: non-ASCII text stays readable (UTF-8, not
\\u escapes), and a newline inside a message or a traceback is escaped, so a record is always one line.
"""

import logging
from datetime import UTC, datetime

import orjson

from apps.core.log_context import FIELDS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        attributes = record.__dict__
        for name in FIELDS:
            value = attributes.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:  # formatted once for every handler, as logging.Formatter does
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a field may hold a UUID's or a lazy string's kin; orjson writes UUIDs itself.
        return orjson.dumps(line, default=str).decode()
