"""P5: admin pages on a big site, each against the admin index, measured side by side in one run.

    .venv/bin/python bench/p5_admin.py [--users 100000] [--entries 1000000] [--reuse-database]

Target (SPEC §10 P5): with 1,000,000 ledger entries and 100,000 users, every changelist and the
per-user page take at most 3 × the admin index's time, and no page counts a big table unfiltered.

1. Database `jifen_bench_p5` (dropped, created and migrated; `--reuse-database` keeps one that
   already holds at least `--entries` entries): `manage.py seed_demo_data --users --entries`
   (demo rules, 60 days of activity, 1 % adjustments), then VACUUM ANALYZE.
2. Pages, all as a superuser (force_login; the session cookie then goes to a bare WSGIHandler, so
   the time is Django's own, without the test client's template instrumentation):
   the admin index (the dashboard's figures and charts included), every registered changelist
   (`admin.site._registry`), each changelist with each of its list_filter applied (the first
   choice after "All" that the filter itself offers), a search (a seeded username, or the first
   word of a row's text), the date_hierarchy drill-down (year, month, day of the latest row), a
   change page of the biggest tables, and the per-user page: the Account admin's own extra URLs
   (any URL name of `AccountAdmin.get_urls()` beyond Django's standard ones) and the account's
   change page.
3. Each page is loaded once with its SQL captured (CaptureQueriesContext), then timed in
   `--rounds` rounds; every round times the index and every page in turn, so the pages and the
   index share the same machine state. A page's time is its median; its ratio is that over the
   index's median. PASS when ≤ 3 ×.
4. In the captured SQL, a `SELECT COUNT(*)` over a big table (ledger entries, completions,
   progress, accounts, users) is flagged when it has no WHERE (`UNFILTERED COUNT`), or only the
   soft-delete condition (`COUNT OF ALL LIVE ROWS`). The slowest statement of each page is printed.

The benchmark exits 0 whether or not the target is met (non-zero when it cannot run).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import harness

DATABASE = "jifen_bench_p5"
TARGET_RATIO = 3.0
BIG_TABLES = ("ledger_scorerecord", "tasks_usertaskrecord", "rules_userscoreinfo", "ledger_account", "auth_user")
STANDARD_URL_SUFFIXES = ("_changelist", "_add", "_history", "_delete", "_change", "_autocomplete")


@dataclass
class Page:
    label: str
    url: str
    owner: str = ""
    times_s: list[float] = field(default_factory=list)
    first_s: float = 0.0  # the first load, with its SQL captured (the dashboard's cache still empty)
    status: int = 0
    queries: list[dict] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.scale_arguments(parser, rounds=5, database=DATABASE)
    parser.add_argument("--only", default="", help="time only pages whose label contains this text (and the index)")
    parser.add_argument("--show-sql", default="", help="print every statement of the pages whose label contains this text")
    return parser.parse_args()


def prepare(args: argparse.Namespace) -> dict[str, str]:
    env = harness.bench_env(args.database, f"jifen-bench-{os.getpid()}")
    # The test client speaks plain HTTP to "testserver"; the rest are production settings.
    env |= {
        "ALLOWED_HOSTS": "testserver,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "JIFEN_VAR_DIR": str(harness.ROOT / "var" / "bench-p5"),
    }
    full_env = {**os.environ, **env}
    reuse = args.reuse_database and harness.database_has_entries(args.database, args.entries)
    if not reuse:
        harness.database_recreate(args.database)
    # A kept database gets the migrations added since it was seeded (indexes, say) before it is measured.
    subprocess.run([harness.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=harness.ROOT, env=full_env, check=True)
    if not reuse:
        started = time.perf_counter()
        subprocess.run(
            [harness.PYTHON, "manage.py", "seed_demo_data", "--users", str(args.users), "--entries", str(args.entries)],
            cwd=harness.ROOT,
            env=full_env,
            check=True,
        )
        print(f"seeded in {time.perf_counter() - started:.0f} s")
    subprocess.run(
        [harness.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=harness.ROOT, env=full_env, check=True
    )
    os.environ.update(env)
    if str(harness.ROOT) not in sys.path:
        sys.path.insert(0, str(harness.ROOT))
    import django

    django.setup()
    return env


def _first_filter_choice(model_admin, request, spec) -> str | None:
    """The query string of the first choice the filter offers after "All" (None if it offers none)."""
    changelist = model_admin.get_changelist_instance(request)
    for choice in list(spec.choices(changelist))[1:]:
        query = choice.get("query_string", "")
        if query and query != "?":
            return query
    return None


def discover_pages() -> list[Page]:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from django.test import RequestFactory
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from apps.ledger.models import Account

    superuser = get_user_model().objects.filter(is_superuser=True).first()
    factory = RequestFactory()
    pages = [Page("admin index (dashboard)", reverse("admin:index"), owner="platform")]
    seeded = get_user_model().objects.filter(username__startswith="demo").order_by("id").values_list("username", flat=True)
    sample_username = seeded[len(seeded) // 2] if seeded.exists() else "admin"

    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        opts = model._meta
        name = f"{opts.app_label}.{opts.model_name}"
        owner = opts.app_label
        base = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        pages.append(Page(f"{name} changelist", base, owner))
        request = factory.get(base)
        request.user = superuser
        try:
            changelist = model_admin.get_changelist_instance(request)
        except Exception as exc:  # a changelist that cannot even be built is reported, not fatal
            print(f"  ! {name}: changelist not built: {exc}")
            continue
        for spec in changelist.filter_specs:
            query = _first_filter_choice(model_admin, request, spec)
            if query:
                pages.append(Page(f"{name} filter {spec.title}", base + query, owner))
        if model_admin.get_search_fields(request):
            term = sample_username if any("user" in f or "username" in f for f in model_admin.search_fields) else "a"
            pages.append(Page(f"{name} search {term!r}", f"{base}?q={term}", owner))
        if model_admin.date_hierarchy:
            field_name = model_admin.date_hierarchy
            latest = model_admin.get_queryset(request).aggregate(latest=Max(field_name))["latest"]
            if latest:
                day = timezone.localtime(latest) if hasattr(latest, "tzinfo") else latest
                drill = f"{base}?{field_name}__year={day.year}"
                pages.append(Page(f"{name} date_hierarchy year", drill, owner))
                drill += f"&{field_name}__month={day.month}"
                pages.append(Page(f"{name} date_hierarchy month", drill, owner))
                pages.append(Page(f"{name} date_hierarchy day", f"{drill}&{field_name}__day={day.day}", owner))
        if opts.db_table in BIG_TABLES:
            row = model_admin.get_queryset(request).order_by("-pk").values_list("pk", flat=True)[:1]
            if row:
                pages.append(
                    Page(f"{name} change page", reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row[0]]), owner)
                )

    # The per-user page: any extra URL of the Account admin (by name), else its change page.
    # The per-user page of the busiest account: the longest history and the most progress rows.
    account = Account.objects.order_by("-last_seq").first()
    account_admin = admin.site._registry.get(Account)
    extra = []
    if account_admin is not None and account is not None:
        for pattern in account_admin.get_urls():
            url_name = getattr(pattern, "name", None)
            if (
                not url_name
                or url_name.endswith(STANDARD_URL_SUFFIXES)
                or pattern.pattern.regex.groups + len(pattern.pattern.converters) == 0
            ):
                continue
            # A parameter named like user_id takes the user's id, any other the account's.
            names = list(getattr(pattern.pattern, "converters", {})) or list(pattern.pattern.regex.groupindex)
            arg = account.user_id if any("user" in name for name in names) else account.pk
            try:
                extra.append(Page(f"per-user page ({url_name}, {arg})", reverse(f"admin:{url_name}", args=[arg]), "ledger"))
            except NoReverseMatch:
                print(f"  note: admin:{url_name} takes other arguments than one id; not timed")
    if not extra:
        print("  note: the Account admin has no per-user URL of its own yet; timing its change page as the per-user page")
    pages.extend(extra)
    if account is not None:
        url = reverse("admin:ledger_account_change", args=[account.pk])
        pages.append(
            Page(f"per-user page (account change page, {account.user.username}, {account.last_seq} entries)", url, "ledger")
        )
    return pages


def flags(page: Page) -> list[str]:
    found = []
    for query in page.queries:
        sql = query["sql"]
        match = re.match(r'SELECT COUNT\(\*\) AS "__count" FROM "(\w+)"(.*)$', sql, re.S)
        if not match or match.group(1) not in BIG_TABLES:
            continue
        rest = match.group(2).strip()
        if not rest.startswith("WHERE") and "WHERE" not in rest:
            found.append(f"UNFILTERED COUNT over {match.group(1)}: {sql[:160]}")
        elif re.fullmatch(r'WHERE "\w+"\."deleted_at" IS NULL', rest):
            found.append(f"COUNT OF ALL LIVE ROWS over {match.group(1)}: {sql[:160]}")
    return found


def main() -> None:
    args = parse_args()
    prepare(args)
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, reset_queries
    from django.test import Client, RequestFactory
    from django.test.utils import CaptureQueriesContext

    from apps.ledger.models import Account, ScoreRecord

    users = get_user_model()
    superuser = users.objects.filter(username="bench-admin").first() or users.objects.create_superuser(
        "bench-admin", "bench@example.com", None
    )
    client = Client()
    client.force_login(superuser)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    handler = WSGIHandler()
    factory = RequestFactory()

    def load(url: str) -> tuple[int, float, str]:
        """(status, seconds, Location header or "")."""
        environ = factory.get(url, HTTP_COOKIE=cookie).environ
        replies = []
        started = time.perf_counter()
        response = handler(dict(environ), lambda status, headers: replies.append((status, dict(headers))))
        b"".join(response)
        response.close()
        elapsed = time.perf_counter() - started
        status, headers = replies[0]
        return int(status.split()[0]), elapsed, headers.get("Location", "")

    print(
        f"P5 inputs: {users.objects.count()} users, {Account.objects.count()} accounts, "
        f"{ScoreRecord.objects.count()} ledger entries, database {args.database}, {args.rounds} rounds"
    )
    pages = discover_pages()
    index = pages[0]
    if args.only:
        pages = [index] + [p for p in pages[1:] if args.only in p.label]
    print(f"{len(pages)} pages")
    for page in pages:
        for _ in range(3):  # a page that redirects (the account's change page to its per-user page) is timed where it leads
            with CaptureQueriesContext(connection) as captured:
                page.status, page.first_s, location = load(page.url)
            if page.status not in (301, 302) or not location.startswith("/"):
                break
            page.label, page.url = f"{page.label} -> {location}", location
        page.queries = list(captured.captured_queries)
        reset_queries()
    for _ in range(args.rounds):
        for page in pages:
            page.times_s.append(load(page.url)[1])

    base = index.median_s
    worst = None
    print(f"\n{'page':<78} {'median ms':>10} {'× index':>8} {'queries':>8}  result")
    for page in pages:
        ratio = page.median_s / base
        ok = page.status == 200 and (page is index or ratio <= TARGET_RATIO)
        if page is not index and (worst is None or ratio > worst[0]):
            worst = (ratio, page)
        result = "" if page is index else ("PASS" if ok else "FAIL")
        status = "" if page.status == 200 else f" (HTTP {page.status})"
        print(f"{page.label[:78]:<78} {page.median_s * 1000:>10.1f} {ratio:>8.2f} {len(page.queries):>8}  {result}{status}")
    print("\nSQL notes (slowest statement of each page over 20 ms; flagged COUNTs):")
    for page in pages:
        notes = flags(page)
        slowest = max(page.queries, key=lambda q: float(q["time"]), default=None)
        if slowest and float(slowest["time"]) > 0.02:
            notes.append(f"slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:300]}")
        if notes:
            print(f"- {page.label} [{page.url}]")
            for note in notes:
                print(f"    {note}")
    if args.show_sql:
        for page in pages:
            if args.show_sql in page.label:
                print(f"\nSQL of {page.label} [{page.url}]:")
                for query in page.queries:
                    print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql']}")
    failed = [p for p in pages[1:] if p.status != 200 or p.median_s / base > TARGET_RATIO]
    flagged = [p for p in pages if flags(p)]
    worst = worst or (1.0, index)
    print(f"\nThe index's first load (the chart's past days not cached yet, SQL captured): {index.first_s * 1000:.1f} ms")
    print(
        f"\nP5 index {base * 1000:.1f} ms; worst ratio {worst[0]:.2f} ({worst[1].label}); "
        f"{len(failed)} of {len(pages) - 1} pages over {TARGET_RATIO:g}× the index, {len(flagged)} with a flagged COUNT: "
        f"{'PASS' if not failed and not flagged else 'FAIL'}"
    )
    if not args.keep_database and not args.reuse_database:
        connection.close()
        harness.database_drop(args.database)


if __name__ == "__main__":
    main()
