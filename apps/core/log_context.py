"""What a log line is about (event, user, task type, rule, batch, source), set by the code that knows it.

`log_context(event_id=..., user_id=...)` sets fields for everything logged inside its block, in
this thread or task only (a context variable); blocks nest, an inner one adding to or overriding
the outer one's fields until it ends. `LogContextFilter`, on the console handler, copies the fields
onto each record it emits, where the JSON formatter (`apps.core.log_format`) writes them; a field
passed with `extra=` to one call wins over the context's.
"""

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType

# The fields a log line may carry: ids and low-level names an operator filters on.
FIELDS = ("event_id", "user_id", "task_type", "rule", "batch_id", "source")
_KNOWN = frozenset(FIELDS)

# Never mutated: each block sets a new dict, so a nested block cannot change its parent's fields.
_fields: ContextVar[Mapping[str, object]] = ContextVar("jifen_log_fields", default=MappingProxyType({}))


class _LogContext:
    """A class rather than @contextmanager: it runs on the request path, where the generator
    machinery would cost several times the two dict operations it wraps."""

    __slots__ = ("_add", "_token")

    def __init__(self, fields: dict[str, object]):
        self._add = fields
        self._token: Token | None = None

    def __enter__(self) -> None:
        self._token = _fields.set({**_fields.get(), **self._add})

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _fields.reset(self._token)


def log_context(**fields: object) -> _LogContext:
    """A block whose log lines carry `fields` (names from FIELDS; a None value is left out).

    Raises TypeError for a name not in FIELDS: the JSON lines keep one fixed set of keys.
    """
    if not fields.keys() <= _KNOWN:
        raise TypeError(f"unknown log field(s): {', '.join(sorted(fields.keys() - _KNOWN))}")
    return _LogContext({name: value for name, value in fields.items() if value is not None})


def log_fields() -> Mapping[str, object]:
    """The fields set for the current block (read only)."""
    return _fields.get()


class LogContextFilter(logging.Filter):
    """Copies the current block's fields onto each record (one passed with `extra=` stays as given)."""

    def filter(self, record: logging.LogRecord) -> bool:
        attributes = record.__dict__
        for name, value in _fields.get().items():
            attributes.setdefault(name, value)
        return True
