"""Every page fits its screen: the admin at 1280 px, the community site at 390 px (issue 14).

One walk through every page an operator or a user reaches, with realistic data (long codes, long
path regexes, long error texts), asserting per page that the page itself does not scroll sideways
(a wide table may scroll inside its own wrapper) and that the admin's header spans the page. The
admin's pages come from `admin.site._registry`, so a newly registered model is covered without
touching this test. Each page leaves a full-page screenshot in var/screenshots/.
"""

import contextlib
import uuid
from datetime import timedelta

import openpyxl
import pytest
from django.contrib import admin
from django.db import transaction
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.community.models import Comment, Post
from apps.ledger.models import Level, PointType
from apps.ledger.services.adjustments import adjustment_request
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.notifications.events import EVENT_TYPES
from apps.notifications.models import WebhookAttempt, WebhookEndpoint
from apps.notifications.services.deliveries import webhook_endpoint_create, webhook_endpoint_send_test
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.holds import hold_place
from apps.rewards.services.redemptions import redemption_cancel, redemption_create
from apps.rules.models import Badge, BadgeAward, ScoreRule, ScoreRuleObjectPoints
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.parking import event_park
from apps.tracking.services.pipeline import event_process
from apps.tracking.services.service_keys import service_key_create
from tests.browser.conftest import PASSWORD
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.notifications.conftest import notify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_VIEWPORT = {"width": 1280, "height": 900}
SITE_VIEWPORT = {"width": 390, "height": 844}

LONG_REGEX = (
    r"^/api/v2/communities/(?P<community_id>[0-9]+)/threads/"
    r"(?P<thread_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"/comments/(?P<comment_id>[0-9]+)/reactions/?$"
)
LONG_PATH = "/api/v2/communities/42/threads/0f8fad5b-d9cb-469f-a165-70867728950e/comments/123456/reactions/"
LONG_CODE = "spring-festival-community-engagement-weekly-bonus-for-long-posts"  # 64 characters, the most
LONG_TEXT = (
    "A very long description that an operator pasted from the campaign brief without any line breaks, "
    "to see whether the pages wrap it or push the whole layout sideways: " + "supercalifragilisticexpialidocious-" * 4
)

# Jifen's own lists show every column at 1280 px; a third-party app's list may scroll inside its box.
OWN_APPS = ("tasks_", "rules_", "ledger_", "tracking_", "community_", "rewards_", "notifications_")

# The page's own width against the window's, the header's, a list's hidden width, and what sticks out.
MEASURE = """() => {
  const root = document.documentElement;
  const header = document.getElementById("header");
  const widest = [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 1)
    .slice(0, 3)
    .map((el) => {
      const names = typeof el.className === "string" ? el.className.trim() : "";
      const classes = names ? "." + names.split(/\\s+/).join(".") : "";
      return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes;
    });
  const results = document.querySelector("#changelist .results");
  return {
    hidden: results ? results.scrollWidth - results.clientWidth : 0,
    scroll: root.scrollWidth,
    client: root.clientWidth,
    header: header ? Math.round(header.getBoundingClientRect().width) : null,
    culprits: widest,
  };
}"""


class Walk:
    """Visits pages, measures each and keeps what does not fit."""

    def __init__(self, page, base_url, screenshot, *, admin_header: bool):
        self.page, self.base_url, self.screenshot, self.admin_header = page, base_url, screenshot, admin_header
        self.visited: list[str] = []
        self.problems: list[str] = []

    def check(self, label: str) -> None:
        self.page.wait_for_load_state("load")
        size = self.page.evaluate(MEASURE)
        self.visited.append(label)
        if size["scroll"] > size["client"]:
            self.problems.append(
                f"{label} ({self.page.url}): the page is {size['scroll']} px wide in a {size['client']} px window; "
                f"sticking out: {', '.join(size['culprits']) or '?'}"
            )
        if size["hidden"] > 0 and label.startswith(OWN_APPS):
            self.problems.append(f"{label} ({self.page.url}): the list hides {size['hidden']} px of its columns behind a scroll")
        if self.admin_header and (size["header"] is None or size["header"] < size["client"]):
            self.problems.append(f"{label} ({self.page.url}): the header is {size['header']} px of {size['client']} px")
        if not self.page.locator("link[rel=icon]").count():
            self.problems.append(f"{label} ({self.page.url}): no icon link (the browser asks for /favicon.ico)")
        self.screenshot(self.page, label)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def visit(self, label: str, url: str, *, status: int = 200) -> None:
        response = self.page.goto(self.base_url + url)
        if response is None or response.status != status:
            got = response.status if response else "no response"
            self.problems.append(f"{label} ({url}): status {got}, expected {status}")
        self.check(label)


ITEM_COLUMNS = ["code", "name", "description", "cost", "point_type", "stock", "per_user_limit", "limit_period"]
ITEM_COLUMNS += ["start_time", "end_time", "min_level", "min_level_type", "position", "image", "status"]


def write_item_sheet(path, rows) -> str:
    book = openpyxl.Workbook()
    book.active.append(ITEM_COLUMNS)
    for row in rows:
        book.active.append(row)
    book.save(path)
    return str(path)


def write_sheet(path, rows) -> str:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(
        ["score_type", "task_type", "score_desc", "kind", "points", "statistical_period", "required_number_of_times"]
        + ["award_limit_per_period", "number_limit_all", "start_time", "end_time", "can_repeat", "status"]
    )
    for row in rows:
        sheet.append(row)
    book.save(path)
    return str(path)


@pytest.fixture
def world(superuser):
    """Task configs and rules of several kinds, a user with a history, and a bit of everything else."""
    now = timezone.now()
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", task_desc="Daily sign-in")
    TaskConfigFactory(
        task_type="react", interface_name=LONG_REGEX, id_group_name="comment_id", task_desc=LONG_TEXT[:255], priority=5
    )
    TaskConfigFactory(task_type="react-old", interface_name=LONG_REGEX, status="deprecated")
    ScoreRuleFactory(score_type="daily", score_desc="Daily sign-in", points=2, award_limit_per_period=1)
    ScoreRuleFactory(score_type="ten-in-a-row", kind="streak", points=20, required_number_of_times=10)
    ScoreRuleFactory(score_type="first-ever", statistical_period="none", points=50, number_limit_all=1000)
    past = ScoreRuleFactory(
        score_type="welcome-back", task_type="sign-in", points=4, status="editing", start_time=now - timedelta(days=7)
    )
    long_rule = ScoreRuleFactory(  # the newest: its pages are the ones visited as "change" and "history"
        score_type=LONG_CODE, score_desc=LONG_TEXT[:255], task_type="react", points=3, statistical_period="week"
    )
    ScoreRuleObjectPoints.objects.create(rule=long_rule, business_id="comment-" + "9" * 60, points=7)
    # A second point type with long names and five levels; signing in earns it too.
    exp = PointType.objects.create(
        code="community-experience-" + "x" * 11, name="Community experience for " + "very " * 7, spendable=False, position=1
    )
    for number, threshold in enumerate((0, 100, 500, 2000, 10000)):
        Level.objects.create(point_type=exp, name=f"Level {number} of the long ladder " + "z" * 20, threshold=threshold)
    ScoreRuleFactory(score_type="daily-exp", points=150, award_limit_per_period=3, point_type=exp)

    # The shop: coins to pay, an exp level to require, items of every status with long texts.
    coins = PointType.objects.create(code="coins", name="Community coins for the annual campaign", spendable=True)
    grandmaster = Level.objects.create(point_type=exp, name="Grandmaster of the community forums", threshold=1_000_000)
    gold = Level.objects.create(point_type=coins, name="Gold member of the long-titled club", threshold=10_000)
    RewardItem.objects.create(code="mug", name="A mug", cost=500, point_type=coins, stock=10, status="active")
    RewardItem.objects.create(code="old-pen", name="A pen", cost=20, status="retired")
    # On the site's shop: an item with a long code, name and description, and a gated one.
    RewardItem.objects.create(
        code="shop-" + LONG_CODE[5:],
        name=LONG_TEXT[:120],
        description=LONG_TEXT,
        cost=30,
        point_type=coins,
        stock=10,
        per_user_limit=2,
        limit_period="week",
        end_time=now + timedelta(days=30),
        status="active",
    )
    RewardItem.objects.create(code="vip", name="VIP", cost=5, point_type=coins, min_level=gold, status="active", position=1)
    long_item = RewardItem.objects.create(  # the newest: its pages are the ones visited as "change" and "history"
        code=LONG_CODE,
        name=LONG_TEXT[:120],
        description=LONG_TEXT * 3,
        cost=999_999_999,
        point_type=coins,
        stock=1_000_000,
        per_user_limit=3,
        limit_period="month",
        start_time=now - timedelta(days=1),
        end_time=now + timedelta(days=365),
        min_level=grandmaster,
        position=9,
    )
    RewardItem.objects.filter(pk=long_item.pk).update(review_state="submitted", review_at=now)  # in the review queue

    alice = UserFactory(username="alice", password=PASSWORD)
    for minutes in (90, 30, 5):
        event_process(
            event=Event(
                event_id=uuid.uuid4(),
                user_id=alice.pk,
                task_type="sign-in",
                occurred_at=now - timedelta(minutes=minutes),
                method="POST",
                path="/checkin/",
            )
        )
    event_process(
        event=Event(
            event_id=uuid.uuid4(),
            user_id=alice.pk,
            task_type="react",
            occurred_at=now,
            method="POST",
            path=LONG_PATH,
            business_id="123456",
        )
    )
    adjustment_request(user_id=alice.pk, amount=25, reason=LONG_TEXT[:200], request_token=uuid.uuid4(), actor=superuser)
    event_park(payload={"event_id": str(uuid.uuid4()), "task_type": "react", "path": LONG_PATH}, error=LONG_TEXT, attempts=5)
    service_key_create(name="partner-forum-" + "x" * 40, task_types="sign-in react", created_by=superuser)
    # Points that expire (some due already, some ahead) and a checkout's hold on them.
    stars = PointType.objects.create(code="stars", name="Stars of the year-end campaign", expiry=PointType.Expiry.YEAR_END)
    with transaction.atomic():
        account = account_lock(user_id=alice.pk, point_type_id=stars.pk)
        for n, earned in enumerate((now - timedelta(days=800), now - timedelta(days=300), now)):
            ledger_post_entry(
                account=account, amount=900_000 + n, kind="adjustment", idempotency_key=f"stars-{n}", earned_at=earned
            )
    shop = service_key_create(name="checkout-of-the-partner-shop-" + "y" * 40, may_hold=True, created_by=superuser)[0]
    hold_place(service_key=shop, user=alice, point_type=stars, amount=123_456, client_key="order-" + "7" * 100, expires_in_s=600)
    post = Post.objects.create(author=alice, title="Hello from a long title " + "that goes on " * 6, body=LONG_TEXT * 2)
    Comment.objects.create(author=alice, post=post, body=LONG_TEXT)
    # Alice's redemptions in the shop: one pending, one cancelled.
    with transaction.atomic():
        ledger_post_entry(
            account=account_lock(user_id=alice.pk, point_type_id=coins.pk), amount=500, kind="award", idempotency_key="fit"
        )
    redemption_create(user=alice, item_code="shop-" + LONG_CODE[5:], client_key="fit-1")
    cancelled = redemption_create(user=alice, item_code="shop-" + LONG_CODE[5:], client_key="fit-2").redemption
    redemption_cancel(redemption=cancelled, actor=superuser, note=LONG_TEXT[:500])
    # A badge with a long name, held by alice, and notifications of every kind with long names in them.
    badge = Badge.objects.create(code="badge-" + LONG_CODE[6:], name="Badge " + LONG_TEXT[:110], description=LONG_TEXT[:500])
    badge_rule = ScoreRuleFactory(score_type="badge-rule", points=0, badge=badge, statistical_period="none")
    BadgeAward.objects.create(
        user=alice, badge=badge, rule=badge_rule, completion_id=1, earned_at=timezone.now(), created_at=timezone.now()
    )
    long_data = {
        "rules": [LONG_CODE, "daily"],
        "amounts": [{"point_type": exp.code, "amount": 123_456}, {"point_type": "coins", "amount": 7}],
        "point_type": exp.code,
        "amount": 123_456,
        "reason": LONG_TEXT[:255],
        "expires_at": "2027-12-31T16:00:00+00:00",
        "level": "Grandmaster of the community forums",
        "badge": badge.code,
        "item_name": LONG_TEXT[:120],
        "cost": 500,
        "note": LONG_TEXT[:500],
        "service": "checkout-of-the-partner-shop-" + "y" * 40,
        "description": LONG_TEXT[:255],
    }
    for kind in EVENT_TYPES:
        notify(alice, kind, long_data)
    # Webhooks: an endpoint that wants everything, failing, its delivery with a long answer; one disabled.
    hook = webhook_endpoint_create(
        name="partner-crm-" + "x" * 60,
        url="https://crm.partner-of-the-community.example.com/" + LONG_CODE + "/hooks/jifen?token=" + "t" * 40,
        event_types=list(EVENT_TYPES),
        created_by=superuser,
    )[0]
    delivery = webhook_endpoint_send_test(endpoint=hook, sent_by="op")
    WebhookAttempt.objects.create(
        delivery=delivery, at=now, status_code=500, response=(LONG_TEXT * 3)[:500], error=LONG_TEXT[:255], duration_ms=5000
    )
    WebhookEndpoint.objects.filter(pk=hook.pk).update(failing_since=now - timedelta(hours=3))
    gone = webhook_endpoint_create(name="old-" + LONG_CODE, url="https://old.example.com/hook", event_types=["points.awarded"])[0]
    WebhookEndpoint.objects.filter(pk=gone.pk).update(active=False, disabled_at=now, disabled_reason=LONG_TEXT[:255])
    webhooks = {"hook": hook, "delivery": delivery}
    return {"alice": alice, "past_rule": past, "post": post, "long_item": long_item, "exp": exp, **webhooks}


def lock_out(page, url: str, username: str) -> None:
    """Fail to log in until django-axes locks the username out."""
    for _ in range(10):
        page.goto(url)
        page.fill("#id_username", username)
        page.fill("#id_password", "wrong-password")
        with page.expect_navigation() as navigation:
            page.click("[type=submit]")
        if navigation.value.status == 429:
            return
    pytest.fail(f"{username} was not locked out at {url}")


def admin_urls(superuser) -> list[tuple[str, str]]:
    """(label, url) of every registered model's list, add, change and history pages that a superuser may see."""
    request = RequestFactory().get("/admin/")
    request.user = superuser
    urls = []
    for model, model_admin in admin.site._registry.items():
        name = f"{model._meta.app_label}_{model._meta.model_name}"
        if not model_admin.has_view_permission(request):
            continue
        urls.append((f"{name}-list", reverse(f"admin:{name}_changelist")))
        if model_admin.has_add_permission(request):
            urls.append((f"{name}-add", reverse(f"admin:{name}_add")))
        obj = model_admin.get_queryset(request).order_by("-pk").first()
        if obj is None:
            continue
        change = reverse(f"admin:{name}_change", args=[obj.pk])
        urls.append((f"{name}-change", change))
        with contextlib.suppress(NoReverseMatch):  # a model admin may have no history page
            urls.append((f"{name}-history", reverse(f"admin:{name}_history", args=[obj.pk])))
    return urls


def test_every_page_fits_its_screen(browser_context, live_server, admin_login, superuser, world, screenshot, tmp_path, settings):
    settings.AXES_FAILURE_LIMIT = 2  # the lockout pages, sooner
    alice, past_rule, post = world["alice"], world["past_rule"], world["post"]
    completion = UserTaskRecord.objects.filter(user=alice).order_by("-pk").first()
    page = browser_context.new_page()
    missing = []  # any 404 on the way: the favicon, a stylesheet, an image
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)

    # --- the community site, on a phone ------------------------------------------------------
    page.set_viewport_size(SITE_VIEWPORT)
    site = Walk(page, live_server.url, screenshot, admin_header=False)
    site.visit("site-home-anonymous", "/")
    site.visit("site-login", "/accounts/login/")
    site.visit("site-signup", "/accounts/signup/")
    site.visit("site-leaderboard-anonymous", "/leaderboard/")
    site.visit("site-shop-anonymous", "/shop/")
    lock_out(page, f"{live_server.url}/accounts/login/", "mallory")
    site.expect(page.locator("#header").count() == 0, "the site's lockout page wears the admin's header")
    site.expect(page.locator("main a[href='/']").count() > 0, "the site's lockout page has no way back home")
    site.check("site-locked-out")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("[type=submit]")
    site.visit("site-home", "/")
    site.visit("site-post", f"/posts/{post.pk}/")
    site.visit("site-my-points", "/me/points/")
    site.visit("site-notifications", "/me/notifications/")
    site.visit("site-profile", "/users/alice/")
    site.visit("site-shop", "/shop/")
    site.visit("site-leaderboard", "/leaderboard/")
    site.visit("site-leaderboard-type", f"/leaderboard/?period=all&point_type={world['exp'].code}")
    site.visit("site-leaderboard-rule", f"/leaderboard/?period=week&rule={ScoreRule.objects.get(score_type=LONG_CODE).pk}")

    # --- the admin, on a laptop ------------------------------------------------------------
    page.set_viewport_size(ADMIN_VIEWPORT)
    page.context.clear_cookies()
    console = Walk(page, live_server.url, screenshot, admin_header=True)
    lock_out(page, f"{live_server.url}/admin/login/", "trudy")
    console.expect(
        page.locator("#content a[href^='/admin/login/']").count() > 0, "the admin's lockout page has no link to the login"
    )
    console.check("admin-locked-out")
    page.context.clear_cookies()
    admin_login(page, superuser)
    console.visit("admin-index", "/admin/")
    for label, url in admin_urls(superuser):
        console.visit(label, url)

    rule_page = f"/admin/rules/scorerule/{past_rule.pk}"
    pending = Redemption.objects.get(status="pending")
    since = (timezone.localdate() - timedelta(days=30)).isoformat()
    custom = [
        ("test-a-request", f"/admin/tasks/taskconfig/test-request/?method=POST&path={LONG_PATH}"),
        ("why-no-points", "/admin/tasks/usertaskrecord/why/?username=alice"),
        ("why-one-completion", f"/admin/tasks/usertaskrecord/why/?username=alice&completion={completion.pk}"),
        ("dry-run", f"{rule_page}/dry-run/?since={since}"),
        ("user-page", f"/admin/ledger/account/user/{alice.pk}/"),
        ("adjustment-request", f"/admin/ledger/adjustment/add/?user={alice.pk}"),
        ("admin-leaderboard", "/admin/ledger/leaderboardtotal/"),
        ("admin-leaderboard-type", f"/admin/ledger/leaderboardtotal/?period=all&point_type={world['exp'].code}"),
        ("user-page-one-type", f"/admin/ledger/account/user/{alice.pk}/?type={world['exp'].code}"),
        ("point-type-default", f"/admin/ledger/pointtype/{PointType.objects.get(is_default=True).pk}/change/"),
        ("rule-import", "/admin/rules/scorerule/import/"),
        ("rule-export", "/admin/rules/scorerule/export/"),
        ("review-queue", "/admin/rules/scorerule/review/"),
        ("shop-section", "/admin/jobs/shop/"),
        ("item-import", "/admin/rewards/rewarditem/import/"),
        ("item-export", "/admin/rewards/rewarditem/export/"),
        ("item-activate", f"/admin/rewards/rewarditem/{world['long_item'].pk}/workflow/activate/"),
        ("redemption-fulfil", f"/admin/rewards/redemption/{pending.pk}/fulfil/"),
        ("redemption-cancel", f"/admin/rewards/redemption/{pending.pk}/cancel/"),
        ("webhook-rotate", f"/admin/notifications/webhookendpoint/{world['hook'].pk}/rotate-secret/"),
        ("webhook-send-test", f"/admin/notifications/webhookendpoint/{world['hook'].pk}/send-test/"),
        ("webhook-send-again", f"/admin/notifications/webhookdelivery/{world['delivery'].pk}/send-again/"),
        ("webhooks-section", "/admin/jobs/webhooks/"),
    ]
    for label, url in custom:
        console.visit(label, url)

    # Activating a rule that starts in the past shows what it would have awarded first.
    page.goto(f"{live_server.url}{rule_page}/change/")
    page.click(".jifen-step-activate")
    page.locator("#activate-only").wait_for()
    console.check("activate-past-rule")

    # A rule sheet with bad rows, then a good one's preview.
    good = ["spring-" + "x" * 50, "react", LONG_TEXT[:255], "count", 5, "day", 1, 10, None, None, None, True, "editing"]
    bad = ["autumn-" + "y" * 50, "react", LONG_TEXT[:255], "count", -3, "fortnight", 1, 1, None, None, None, True, "editing"]
    for label, rows in (("rule-import-errors", [good, bad]), ("rule-import-preview", [good])):
        page.goto(f"{live_server.url}/admin/rules/scorerule/import/")
        page.select_option("#id_format", label="xlsx")
        page.set_input_files("#id_import_file", write_sheet(tmp_path / f"{label}.xlsx", rows))
        with page.expect_navigation():
            page.click("input[type=submit]")
        console.check(label)

    # An item sheet with bad rows, then a good one's preview.
    good = ["autumn-" + "z" * 50, LONG_TEXT[:120], LONG_TEXT[:300], 50, "coins", 100, 1, "week"]
    good += [None, None, "Grandmaster of the community forums", "exp", 3, None, "editing"]
    bad = ["winter-" + "w" * 50, LONG_TEXT[:120], "+cmd|' /C calc'!A0", -5, "gems", -1, 0, "fortnight"]
    bad += ["2026-12-02", "2026-12-01", "Nobody", None, None, "../" + LONG_CODE + ".png", "sold"]
    for label, rows in (("item-import-errors", [good, bad]), ("item-import-preview", [good])):
        page.goto(f"{live_server.url}/admin/rewards/rewarditem/import/")
        page.select_option("#id_format", label="xlsx")
        page.set_input_files("#id_import_file", write_item_sheet(tmp_path / f"{label}.xlsx", rows))
        with page.expect_navigation():
            page.click("input[type=submit]")
        console.check(label)

    # Where a page names no icon (the API, an error page), the browser's /favicon.ico finds one too.
    icon = page.request.get(f"{live_server.url}/favicon.ico")
    if not (icon.ok and icon.headers["content-type"].startswith("image/")):
        missing.append(f"{live_server.url}/favicon.ico ({icon.status} {icon.headers.get('content-type')})")

    problems = site.problems + console.problems + [f"not found: {url}" for url in sorted(set(missing))]
    assert not problems, f"{len(problems)} of {len(site.visited) + len(console.visited)} pages do not fit:\n" + "\n".join(
        problems
    )
