"""Which characters outside text may bring into the database: no control characters, no lone surrogates.

NUL cannot be stored in PostgreSQL text or jsonb at all, a lone surrogate cannot be encoded as UTF-8,
and the other C0/C1 controls (escape sequences, bells) only ever arrive by mistake or malice. Free
text an operator writes (a description, a reason) may keep its tabs and line breaks; identifiers
(task types, business ids, request meta) may not.
"""

import re

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROLS_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str, *, free_text: bool = False) -> str | None:
    """Why `value` may not be stored (a control character or lone surrogate, and where), or None if it may.

    `free_text` allows tab, line feed and carriage return.
    """
    found = (_CONTROLS_BUT_LINE_BREAKS if free_text else _CONTROLS).search(value)
    if found is None:
        return None
    char = found.group()
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"holds {what} ({ascii(char)}) at position {found.start()}"
