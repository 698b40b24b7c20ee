"""Language: the site and the admin in Simplified Chinese (zh-hans) or English, and the shipped catalogue.

The browser's Accept-Language picks the language; LANGUAGE_CODE is the default when it names none
we have. The assertions look for our own strings (rules, ledger, demo site), not only Django's.
"""

import ast
import gettext
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation

from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture(autouse=True)
def _back_to_default_language():
    # A request leaves its language active in the thread; later tests expect the default.
    yield
    translation.deactivate()


def page(client, url: str, **headers) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


@pytest.fixture
def superuser(client, db):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def alice_with_history(db):
    """Alice signed in twice today: one award, then the rule's daily limit."""
    TaskConfigFactory(task_type="sign-in")
    ScoreRuleFactory(score_type="daily", score_desc="每日签到", points=2, award_limit_per_period=1)
    ScoreRuleFactory(score_type="streak-7", kind="streak", points=10, required_number_of_times=7)
    alice = UserFactory(username="alice")
    for _ in range(2):
        event = Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="sign-in", occurred_at=timezone.now())
        event_process(event=event)
    return alice


class TestDemoSite:
    def test_home_in_chinese_for_a_visitor_and_a_signed_in_user(self, client, db):
        html = page(client, reverse("home"), **ZH)
        assert '<html lang="zh-hans">' in html
        assert "积分社区" in html and "最新帖子" in html and "登录或注册后即可发帖" in html
        assert "Latest posts" not in html

        client.force_login(UserFactory(username="bob"))
        html = page(client, reverse("home"), **ZH)
        assert "每日签到" in html and "今日签到" in html and "发布" in html and "我的积分" in html
        assert "标题" in html  # the post form's own labels (model verbose names)

    def test_sign_in_answers_in_chinese(self, client, db):
        client.force_login(UserFactory(username="bob"))
        first = client.post(reverse("checkin"), **ZH).json()
        assert first["code"] == 0 and first["message"] == f"{first['day']} 签到成功。"
        again = client.post(reverse("checkin"), **ZH).json()
        assert again == {"code": 1, "message": "你今天已经签到过了。"}

    def test_my_points_in_chinese(self, client, alice_with_history):
        client.force_login(alice_with_history)
        html = page(client, reverse("my-points"), **ZH)
        assert "余额" in html and "进度" in html and "最近积分记录" in html and "流水号" in html
        assert "连续 1 天 · 再坚持 6 天可得 10 积分" in html  # the streak's progress, in Chinese word order
        assert "今天 1/1 — 已达上限" in html  # the daily rule: one award, the limit
        assert "Recent entries" not in html and "limit reached" not in html and "streak:" not in html


class TestAdmin:
    def test_index_names_our_sections_models_and_dashboard_in_chinese(self, client, superuser):
        html = page(client, reverse("admin:index"), **ZH)
        for text in ("规则编写", "积分规则", "任务配置", "用户与积分流水", "积分调整", "任务完成记录", "事件管道", "失败事件"):
            assert text in html, text
        for text in ("访问控制", "系统", "帖子", "为什么没有积分？", "导入规则表格"):
            assert text in html, text
        # An app's own page (the breadcrumbs' link) keeps the app's name.
        assert "事件追踪" in page(client, reverse("admin:app_list", args=["tracking"]), **ZH)
        assert "生效的积分规则" in html and "每日事件数" in html  # the dashboard
        assert "工作进程心跳超时" in html  # a failing health check, by name (no worker runs here)
        assert "Score rules" not in html and "Task configs" not in html

    def test_score_rule_changelist_in_chinese(self, client, superuser):
        TaskConfigFactory(task_type="sign-in")
        ScoreRuleFactory(score_type="daily")
        html = page(client, reverse("admin:rules_scorerule_changelist"), **ZH)
        assert "规则编码" in html and "统计周期" in html and "获奖人数上限" in html  # column headers
        assert "已生效" in html  # the status badge
        assert "复制为草稿" in html and "停用" in html  # workflow actions
        assert "score rule" not in html.lower().replace("scorerule", "")

    def test_score_rule_change_page_in_chinese(self, client, superuser):
        TaskConfigFactory(task_type="sign-in")
        rule = ScoreRuleFactory(score_type="daily", status="editing")
        html = page(client, reverse("admin:rules_scorerule_change", args=[rule.pk]), **ZH)
        assert "奖励内容" in html and "限制与有效期" in html and "实时数据" in html
        assert "关闭时：同一业务对象在每个用户、每个周期内只计一次。" in html  # a help text

    def test_user_ledger_page_in_chinese(self, client, superuser, alice_with_history):
        html = page(client, reverse("admin:ledger_account_user", args=[alice_with_history.pk]), **ZH)
        assert "alice 的积分" in html and "生效规则的进度" in html and "积分流水" in html
        assert "各规则的判定" in html
        assert "奖励 2 积分" in html  # the engine's why, for the first sign-in
        assert "已计入；无奖励：本周期的奖励次数已达上限" in html  # and for the second
        assert "awarded" not in html

    def test_a_refusal_reaches_the_operator_in_chinese(self, client, superuser):
        TaskConfigFactory(task_type="sign-in")
        rule = ScoreRuleFactory(score_type="daily", status="active")
        url = reverse("admin:rules_scorerule_workflow", args=[rule.pk, "activate"])
        response = client.post(url, follow=True, **ZH)
        assert "当前为“已生效”状态；只有“草稿”状态的才能变为“已生效”。" in response.content.decode()


class TestDefaultLanguage:
    def test_language_code_zh_hans_is_the_default_without_accept_language(self, client, settings, db):
        settings.LANGUAGE_CODE = "zh-hans"
        html = page(client, reverse("home"))
        assert '<html lang="zh-hans">' in html and "最新帖子" in html

    def test_the_browser_still_picks_english_under_a_chinese_default(self, client, settings, db):
        settings.LANGUAGE_CODE = "zh-hans"
        html = page(client, reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
        assert "Latest posts" in html and "最新帖子" not in html

    def test_english_default(self, client, settings, superuser):
        settings.LANGUAGE_CODE = "en"
        assert "Latest posts" in page(client, reverse("home"))
        TaskConfigFactory(task_type="sign-in")
        ScoreRuleFactory(score_type="daily")
        html = page(client, reverse("admin:rules_scorerule_changelist"))
        assert "Select score rule to change" in html and "Rule code" in html and "Copy as draft" in html
        assert "积分规则" not in html

    def test_an_unknown_browser_language_falls_back_to_the_default(self, client, settings, db):
        settings.LANGUAGE_CODE = "zh-hans"
        assert "最新帖子" in page(client, reverse("home"), HTTP_ACCEPT_LANGUAGE="fr")


# --- The catalogue itself ---------------------------------------------------------------------


@dataclass
class PoEntry:
    msgctxt: str | None
    msgid: str
    msgid_plural: str | None
    msgstrs: list[str]
    fuzzy: bool
    python_format: bool


def read_po(path: Path) -> list[PoEntry]:
    """The entries of a .po file (no header, no obsolete entries); enough of the format for our own file."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.splitlines()
        flags = ",".join(line[2:] for line in lines if line.startswith("#,"))
        fields: dict[str, str] = {}
        key = None
        for line in lines:
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[key] += ast.literal_eval(line)
            else:
                key, _, value = line.partition(" ")
                fields[key] = ast.literal_eval(value)
        if not fields or fields.get("msgid") == "":
            continue
        strs = [fields[k] for k in sorted(fields) if k.startswith("msgstr")]
        entries.append(
            PoEntry(
                fields.get("msgctxt"),
                fields["msgid"],
                fields.get("msgid_plural"),
                strs,
                "fuzzy" in flags,
                "python-format" in flags,
            )
        )
    return entries


@pytest.fixture(scope="module")
def po_entries() -> list[PoEntry]:
    return read_po(CATALOGUE / "django.po")


PLACEHOLDER = re.compile(r"%\((\w+)\)[-+ #0]*\d*(?:\.\d+)?[sdirf]|\{(\w+)\}")


def placeholders(text: str) -> set[str]:
    return {match.group(0) for match in PLACEHOLDER.finditer(text)}


def test_every_message_is_translated_and_none_is_fuzzy(po_entries):
    assert len(po_entries) > 300
    fuzzy = [e.msgid for e in po_entries if e.fuzzy]
    untranslated = [e.msgid for e in po_entries if not e.msgstrs or not all(e.msgstrs)]
    assert not fuzzy, fuzzy
    assert not untranslated, untranslated


def test_translations_keep_the_placeholders(po_entries):
    wrong = []
    for entry in po_entries:
        expected = placeholders(entry.msgid_plural or entry.msgid)
        for text in entry.msgstrs:
            if placeholders(text) != expected:
                wrong.append((entry.msgid, text))
    assert not wrong, wrong


def test_chinese_has_one_plural_form(po_entries):
    plurals = [e for e in po_entries if e.msgid_plural]
    assert plurals and all(len(e.msgstrs) == 1 for e in plurals)


def test_the_committed_mo_matches_the_po(po_entries):
    """The .mo is what Django reads: compiled from this .po, not an older one."""
    with open(CATALOGUE / "django.mo", "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    stale = []
    for entry in po_entries:
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        key = (msgid, 0) if entry.msgid_plural else msgid
        if catalog.get(key) != entry.msgstrs[0]:
            stale.append(entry.msgid)
    assert not stale, f"recompile with `make messages`: {stale[:5]}"
