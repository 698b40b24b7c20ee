"""The guides tell the truth: what README.md and docs/*.md name exists in the code.

Each guide is read line by line, and every name of these kinds must exist:

- `manage.py <command>`: a management command (`get_commands()`);
- an environment variable or setting in backticks (`JIFEN_BATCH_SIZE`): read by config/settings.py,
  or a Django or Celery setting, or one of the few NOT_SETTINGS below;
- a repository path (`apps/...`, `config/...`, `bench/...`, …) and a relative link's target and anchor;
- a dotted Python name (`apps.rules.tasks.run_backfill`): it imports;
- `make <target>`: a target of the Makefile;
- an endpoint (`GET /api/me/ledger`): in the API's OpenAPI schema with that method, or a URL of the
  site; a path alone in backticks (`/admin/tasks/usertaskrecord/why/`): a URL of the site.

And the README stays the front door: under 150 lines, linking every guide. A guide that drifts
from the code fails here, naming the guide, the line and the missing thing.
"""

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDES = ("operators", "api", "architecture", "performance", "production")
README_MAX_LINES = 150

# Upper-case names the guides may write in backticks that config/settings.py does not read, each
# with the file that does use it (checked below, so the list cannot outlive its reasons).
NOT_SETTINGS = {
    "CHROMIUM_PATH": "tests/browser/conftest.py",  # the browser the browser tests drive
    "JIFEN_BENCH_REDIS_URL": "bench/harness.py",  # the benchmarks' Redis database
    "HTTP_CF_IPCOUNTRY": "config/settings.py",  # a request.META key: JIFEN_COUNTRY_HEADER's default value
    "REMOTE_ADDR": "apps/tracking/capture.py",  # a request.META key: the client's address
    "PROMETHEUS_MULTIPROC_DIR": "config/settings.py",  # prometheus_client's variable, set from JIFEN_METRICS_DIR
}
# In code blocks only these look like settings (a shell example's own variables, like KEY_ID, do not).
SETTING_PREFIXES = ("JIFEN_", "CELERY_", "DATABASE_", "DB_", "REDIS_", "SECURE_", "DJANGO_")
ENV_READERS = {"env_str", "env_int", "env_bool", "env_float", "env_list", "env_choice"}
PATH_ROOTS = ("apps", "config", "bench", "tests", "templates", "fixtures", "docs", "static", "locale")

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"manage\.py\s+([a-z][a-z0-9_]*)")
_SETTING = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w/.-])")
_PATH = re.compile(rf"(?<![\w./~-])((?:{'|'.join(PATH_ROOTS)})/[A-Za-z0-9_./-]*)(?![<*{{])")
_DOTTED = re.compile(r"(?<![\w./-])((?:apps|config)(?:\.[A-Za-z_]\w*)+)")
_MAKE = re.compile(r"(?:^|[\s`(])make\s+([a-z][\w-]*)")
_ENDPOINT = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/[^\s`'\")]*)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PLACEHOLDER = re.compile(r"<[^>]+>")
_MAKE_TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    fence: str | None  # the language of the code block the line is in ("" if none given); None outside


def lines_of(text: str) -> Iterator[Line]:
    """The lines of a Markdown text, fences left out, each knowing whether it is inside a code block."""
    fence = None
    for number, text_line in enumerate(text.splitlines(), start=1):
        stripped = text_line.lstrip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip() if fence is None else None
            continue
        yield Line(number, text_line, fence)


def code_of(line: Line) -> list[str]:
    """The line's code: all of it in a code block, else its backticked spans."""
    return [line.text] if line.fence is not None else _INLINE_CODE.findall(line.text)


# --- What exists -----------------------------------------------------------------------------


@cache
def env_names_read() -> frozenset[str]:
    """The environment variables config/settings.py reads through config/env.py's typed readers."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))
    return frozenset(
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ENV_READERS
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


@cache
def make_targets() -> frozenset[str]:
    return frozenset(_MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


@cache
def api_operations() -> frozenset[tuple[str, str]]:
    """(METHOD, path) of every operation in the JSON API's OpenAPI schema."""
    from config.api import api

    paths = api.get_openapi_schema()["paths"]
    return frozenset((method.upper(), path) for path, operations in paths.items() for method in operations)


def is_setting(name: str) -> bool:
    return name in env_names_read() or name in NOT_SETTINGS or hasattr(settings, name)


def resolves(name: str) -> bool:
    """Whether a dotted name imports: the longest importable module, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # this prefix is no module: try a shorter one
            raise
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def is_site_url(path: str) -> bool:
    """Whether the site has a page at `path` (placeholders such as `<user id>` taken as 1)."""
    try:
        found = resolve(_PLACEHOLDER.sub("1", path))
    except Resolver404:
        return False
    # The admin answers every other path under /admin/ with its catch-all view (a 404 or the login).
    return not found.view_name.endswith("catch_all_view")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    return {
        github_anchor(line.text)
        for line in lines_of(path.read_text(encoding="utf-8"))
        if line.fence is None and line.text.startswith("#")
    }


# --- The checks --------------------------------------------------------------------------------


def _trim(text: str) -> str:
    return text.rstrip(".,:;)")


def _commands(line: Line) -> Iterator[str]:
    for name in _COMMAND.findall(line.text):
        if name not in get_commands():
            yield f"`manage.py {name}`: no such management command"


def _settings(line: Line) -> Iterator[str]:
    for code in code_of(line):
        for name in _SETTING.findall(code):
            if line.fence is not None and not name.startswith(SETTING_PREFIXES):
                continue
            if not is_setting(name):
                yield f"`{name}`: not read by config/settings.py, not a Django or Celery setting, not in NOT_SETTINGS"


def _paths(line: Line) -> Iterator[str]:
    for found in _PATH.findall(line.text):
        path = _trim(found)
        if not (ROOT / path).exists():
            yield f"`{path}`: no such file or directory in the repository"


def _links(line: Line, doc: Path) -> Iterator[str]:
    if line.fence is not None:
        return
    for target in _LINK.findall(line.text):
        if "://" in target or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            yield f"link `{target}`: no such file"
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            yield f"link `{target}`: {linked.name} has no heading with the anchor #{anchor}"


def _dotted_names(line: Line) -> Iterator[str]:
    for found in _DOTTED.findall(line.text):
        name = _trim(found)
        if not resolves(name):
            yield f"`{name}`: does not import"


def _make(line: Line) -> Iterator[str]:
    for code in code_of(line):
        for target in _MAKE.findall(code):
            if target not in make_targets():
                yield f"`make {target}`: no such target in the Makefile"


def _endpoints(line: Line) -> Iterator[str]:
    for method, found in _ENDPOINT.findall(line.text):
        path = _trim(found.split("?")[0])
        if path.startswith("/api/") and not path.startswith(("/api/docs", "/api/openapi.json")):
            if (method, path) not in api_operations():
                yield f"`{method} {path}`: not an operation of the JSON API (config.api's OpenAPI schema)"
        elif not is_site_url(path):
            yield f"`{method} {path}`: not a URL of the site"
    if line.fence is None:
        for code in code_of(line):
            if code.startswith("/") and " " not in _PLACEHOLDER.sub("1", code) and not is_site_url(code):
                yield f"`{code}`: not a URL of the site"


def _python(text: str) -> Iterator[tuple[int, str]]:
    """Each Python code block parses: (its first line, the problem)."""
    blocks: dict[int, list[str]] = {}
    start = 0
    for line in lines_of(text):
        if line.fence != "python":
            start = 0
            continue
        start = start or line.number
        blocks.setdefault(start, []).append(line.text)
    for first, block in blocks.items():
        try:
            ast.parse("\n".join(block))
        except SyntaxError as exc:
            yield first, f"the Python example does not parse: {exc.msg}"


def doc_problems(doc: Path, text: str | None = None) -> list[str]:
    """Every name in the guide that does not exist, as "<guide>:<line>: <what>"."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    name = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc
    problems = []
    for line in lines_of(text):
        for check in (_commands, _settings, _paths, _dotted_names, _make, _endpoints):
            problems += [f"{name}:{line.number}: {problem}" for problem in check(line)]
        problems += [f"{name}:{line.number}: {problem}" for problem in _links(line, doc)]
    problems += [f"{name}:{number}: {problem}" for number, problem in _python(text)]
    return problems


def all_docs() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


# --- The tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", all_docs(), ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_name_in_the_guide_exists(doc):
    problems = doc_problems(doc)
    assert not problems, "\n".join(problems)


def test_the_guides_are_there():
    missing = [guide for guide in GUIDES if not (ROOT / "docs" / f"{guide}.md").exists()]
    assert not missing, f"docs/ lacks the guides {missing}"


def test_the_readme_is_short_and_links_every_guide():
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n"))
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; keep it under {README_MAX_LINES}"
    linked = {target.partition("#")[0] for target in _LINK.findall(text)}
    unlinked = [f"docs/{doc.name}" for doc in sorted((ROOT / "docs").glob("*.md")) if f"docs/{doc.name}" not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_production_md_names_every_variable_the_settings_read():
    text = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    named = {name for line in lines_of(text) for code in code_of(line) for name in re.findall(r"[A-Z][A-Z0-9_]*", code)}
    missing = sorted(env_names_read() - named)
    assert not missing, f"docs/production.md does not describe {missing}, read by config/settings.py"


def test_each_exception_is_still_used_where_it_says():
    stale = [name for name, where in NOT_SETTINGS.items() if name not in (ROOT / where).read_text(encoding="utf-8")]
    assert not stale, f"NOT_SETTINGS names {stale}, which their files no longer use"


# --- The checks can fail ---------------------------------------------------------------------------

SELF_TEST = ROOT / "docs" / "self-test.md"


def test_a_true_line_passes():
    text = (
        "Run `python manage.py verify_ledger` and `make test`; set `JIFEN_BATCH_SIZE` and `TIME_ZONE`; read\n"
        "apps/tracking/middleware.py and `apps.tracking.middleware.TrackingMiddleware`; ask `GET /api/me`,\n"
        "`POST /api/events`, `GET /healthz` and `/admin/ledger/account/user/<user id>/`; see [the API](api.md#signing).\n"
    )
    assert doc_problems(SELF_TEST, text) == []


@pytest.mark.parametrize(
    ("line", "reported"),
    [
        ("Run `python manage.py frobnicate_ledger` daily.", "`manage.py frobnicate_ledger`: no such management command"),
        ("Set `JIFEN_BACH_SIZE` to 50.", "`JIFEN_BACH_SIZE`: not read by config/settings.py"),
        ("```sh\nJIFEN_BACH_SIZE=50 make run\n```", "`JIFEN_BACH_SIZE`: not read by config/settings.py"),
        ("It lives in apps/tracking/telepathy.py.", "`apps/tracking/telepathy.py`: no such file or directory"),
        ("Call `apps.tracking.middleware.telepathy`.", "`apps.tracking.middleware.telepathy`: does not import"),
        ("Call `apps.telepathy.read_minds`.", "`apps.telepathy.read_minds`: does not import"),
        ("Then `make deploy-everything`.", "`make deploy-everything`: no such target in the Makefile"),
        ("Ask `GET /api/me/friends`.", "`GET /api/me/friends`: not an operation of the JSON API"),
        ("Ask `DELETE /api/me`.", "`DELETE /api/me`: not an operation of the JSON API"),
        ("Open `POST /no-such-page/`.", "`POST /no-such-page/`: not a URL of the site"),
        ("Open `/admin/no-such-app/`.", "`/admin/no-such-app/`: not a URL of the site"),
        ("See [the guide](no-such-guide.md).", "link `no-such-guide.md`: no such file"),
        ("See [signing](api.md#no-such-heading).", "link `api.md#no-such-heading`: api.md has no heading"),
        ("```python\nprint(\n```", "the Python example does not parse"),
    ],
)
def test_a_false_name_is_reported_with_its_line(line, reported):
    text = f"# A guide\n\n{line}\n"
    problems = doc_problems(SELF_TEST, text)
    at = 4 if line.startswith("```") else 3  # a code block's name is on the line after its fence
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"docs/self-test.md:{at}: "), problems
    assert reported in problems[0], problems


def test_prose_is_not_mistaken_for_names():
    text = (
        "Make sure the worker runs; a post made in the morning counts. The OUTBOX is not a setting when\n"
        "unquoted, and `locale/zh_Hans/LC_MESSAGES/django.po` is a path, not a setting.\n"
        "```sh\nKEY_ID=jk_0123 SECRET=x curl ...\n```\n"
    )
    assert doc_problems(SELF_TEST, text) == []
