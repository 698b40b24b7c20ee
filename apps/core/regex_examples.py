"""Example strings that a regular expression matches, to show an operator what a path regex covers.

Whether two path regexes can match the same path is not decidable in general, so the admin asks a
narrower question: does either config's regex match one of the other's example paths? Examples
are built from the pattern's parse tree: each character class gives a digit, then a letter (ids
are most often digits, slugs letters), each repeat its smallest count of at least one, each
alternative a path of its own. Only examples the pattern really matches (re.fullmatch) are kept,
so look-arounds and back-references can cost examples, never give a false one.
"""

import itertools
import re
import re._constants as C  # noqa: N812 - the parser's opcode names
import re._parser as sre_parse
import warnings

# Characters tried for a class or "any", in order: a digit, a letter, then punctuation.
_CANDIDATES = "1a-_x.~Z0"
_CATEGORY = {
    C.CATEGORY_DIGIT: str.isdigit,
    C.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    C.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    C.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    C.CATEGORY_SPACE: str.isspace,
    C.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
}
MAX_EXAMPLES = 8
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)
_ATOMIC_GROUP = C.ATOMIC_GROUP


def _in_class(items, char: str) -> bool:
    negate = False
    hit = False
    for op, arg in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            hit |= ord(char) == arg
        elif op is C.RANGE:
            hit |= arg[0] <= ord(char) <= arg[1]
        elif op is C.CATEGORY:
            test = _CATEGORY.get(arg)
            hit |= bool(test and test(char))
    return hit != negate


def _class_choices(items) -> list[str]:
    chosen = [c for c in _CANDIDATES if _in_class(items, c)]
    if not chosen:  # a class of other characters: its first literal or range start
        for op, arg in items:
            if op is C.LITERAL:
                chosen.append(chr(arg))
                break
            if op is C.RANGE:
                chosen.append(chr(arg[0]))
                break
    digit = next((c for c in chosen if c.isdigit()), None)
    letter = next((c for c in chosen if c.isalpha()), None)
    picks = [c for c in (digit, letter) if c] or chosen[:1]
    return picks


def _alternatives(parsed, flavour: int) -> list[str]:
    """Strings for a sequence of parsed items; `flavour` 0 prefers digits, 1 letters."""
    parts: list[list[str]] = []
    for op, arg in parsed:
        if op is C.LITERAL:
            parts.append([chr(arg)])
        elif op is C.NOT_LITERAL:
            parts.append([_not_literal(arg, flavour)])
        elif op is C.ANY:
            parts.append(["1" if flavour == 0 else "a"])
        elif op is C.IN:
            picks = _class_choices(arg)
            parts.append([picks[min(flavour, len(picks) - 1)]])
        elif op in _REPEATS:
            low, _high, item = arg
            inner = _alternatives(item, flavour)
            count = max(low, 1)
            options = [value * count for value in inner]
            if low == 0:
                options.append("")
            parts.append(options)
        elif op is C.SUBPATTERN:
            parts.append(_alternatives(arg[-1], flavour))
        elif op is _ATOMIC_GROUP:
            parts.append(_alternatives(arg, flavour))
        elif op is C.BRANCH:
            options: list[str] = []
            for branch in arg[1]:
                options.extend(_alternatives(branch, flavour))
            parts.append(options)
        elif op is C.CATEGORY:
            parts.append(_class_choices([(C.CATEGORY, arg)]))
        else:  # anchors, look-arounds, back-references: nothing of their own
            parts.append([""])
    results = []
    for combination in itertools.islice(itertools.product(*parts), MAX_EXAMPLES * 4):
        results.append("".join(combination))
    return results


def regex_examples(pattern: str, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to `limit` distinct strings that `pattern` fully matches (none for a pattern that fails to parse)."""
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: the pattern is the operator's
            warnings.simplefilter("ignore")
            compiled = re.compile(pattern)
            parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return []
    found: list[str] = []
    for flavour in (0, 1):
        for example in _alternatives(parsed, flavour):
            if example not in found and compiled.fullmatch(example):
                found.append(example)
                if len(found) >= limit:
                    return found
    return found


def _not_literal(excluded: int, flavour: int) -> str:
    """A character other than `excluded`: a digit for flavour 0, a letter for 1."""
    pool = "12" if flavour == 0 else "ab"
    return pool[0] if ord(pool[0]) != excluded else pool[1]
