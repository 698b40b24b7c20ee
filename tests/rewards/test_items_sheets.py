"""Item sheets (SPEC §11 "the same sheets as rules", §7, G8): `import_rules --resource items`,
`export_rules --resource items` and the admin's import and export pages."""

import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.ledger.point_types import default_point_type_id
from apps.rewards.models import RewardItem
from apps.rules.admin_sheets import SHEET_FORMATS
from tests.factories import UserFactory
from tests.rewards.item_factory import RewardItemFactory, coins, exp, level
from tests.test_roles import member

pytestmark = pytest.mark.django_db

HEADER = (
    "code,name,description,cost,point_type,stock,per_user_limit,limit_period,start_time,end_time,"
    "min_level,min_level_type,position,image,status\n"
)
LABELS = {
    "code": "Item code",
    "name": "Name",
    "cost": "Cost",
    "point_type": "Point type",
    "stock": "Stock",
    "per_user_limit": "Limit per user",
    "limit_period": "Limit period",
    "end_time": "Available until",
    "min_level": "Minimum level",
    "min_level_type": "Minimum level's point type",
    "image": "Image",
    "description": "Description",
    "status": "Status",
}
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture(autouse=True)
def op(db):
    """The operator that status-changing imports name with --user."""
    return UserFactory(username="op", is_staff=True, is_superuser=True)


AS_OP = ("--user", "op")


@pytest.fixture
def types():
    spend, rank = coins(), exp()
    level(rank, "Silver", 100)
    level(rank, "Gold", 1000)
    return spend, rank


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def import_items(path: str, *extra: str) -> str:
    out = io.StringIO()
    call_command("import_rules", path, "--resource", "items", *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(path: str, *extra: str) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was applied|could not be read|formula"):
        call_command("import_rules", path, "--resource", "items", *extra, stderr=err, stdout=io.StringIO())
    return err.getvalue()


def snapshot() -> list[tuple]:
    return sorted(RewardItem.all_objects.values_list("code", "name", "cost", "point_type", "status", "stock", "min_level"))


def test_a_sheet_creates_items_with_types_by_code_levels_by_name_and_images_by_path(tmp_path, types):
    spend, rank = types
    default_storage.save("rewards/mug.png", ContentFile(b"\x89PNG"))
    path = write(
        tmp_path,
        "items.csv",
        HEADER
        + "mug,A mug,Ceramic,500,coins,100,1,day,2026-12-01 00:00,,Gold,,1,rewards/mug.png,active\n"
        + "sticker,A sticker,,20,,,,,,,,,,,\n",
    )
    out = import_items(path, *AS_OP)
    assert "items: applied: new 2" in out
    mug = RewardItem.objects.get(code="mug")
    assert (mug.status, mug.cost, mug.point_type, mug.stock, mug.per_user_limit, mug.limit_period) == (
        "active",
        500,
        spend,
        100,
        1,
        "day",
    )
    assert mug.min_level.name == "Gold" and mug.min_level.point_type == rank
    assert mug.start_time == datetime(2026, 12, 1, tzinfo=TZ) and mug.image.name == "rewards/mug.png"
    assert mug.history.latest().history_change_reason == "imported" and mug.history.latest().history_user.username == "op"
    sticker = RewardItem.objects.get(code="sticker")
    assert (sticker.point_type_id, sticker.stock, sticker.limit_period, sticker.position, sticker.status, sticker.image.name) == (
        default_point_type_id(),
        None,
        "none",
        0,
        "editing",
        "",
    )


@pytest.mark.parametrize("extension", ["csv", "xlsx", "json"])
def test_export_then_import_unchanged_changes_nothing(tmp_path, types, extension):
    spend, rank = types
    default_storage.save("rewards/mug.png", ContentFile(b"\x89PNG"))
    gold = rank.levels.get(name="Gold")
    RewardItemFactory(
        code="mug",
        name="=A mug",  # formula-like text is written escaped and read back as it was
        description="Line one\nline two",
        cost=500,
        point_type_id=spend.pk,
        stock=10,
        per_user_limit=2,
        limit_period="week",
        start_time=datetime(2026, 12, 1, 8, tzinfo=TZ),
        min_level=gold,
        image="rewards/mug.png",
        status="active",
    )
    RewardItemFactory(code="pen", cost=5, status="retired")
    RewardItemFactory(code="draft", cost=7)
    before = snapshot()
    path = str(tmp_path / f"items.{extension}")
    out = io.StringIO()
    call_command("export_rules", path, "--resource", "items", stdout=out)
    assert "items: 3 row(s) written" in out.getvalue()
    assert "skip 3" in import_items(path)
    assert snapshot() == before
    assert RewardItem.objects.get(code="mug").history.count() == 1


def test_the_export_heads_columns_with_labels_and_writes_codes_and_names(tmp_path, types):
    spend, rank = types
    RewardItemFactory(code="mug", cost=500, point_type_id=spend.pk, min_level=rank.levels.get(name="Gold"))
    path = str(tmp_path / "items.json")
    call_command("export_rules", path, "--resource", "items", stdout=io.StringIO())
    (row,) = json.loads((tmp_path / "items.json").read_text(encoding="utf-8"))
    assert row["Item code"] == "mug" and row["Point type"] == "coins"
    assert row["Minimum level"] == "Gold" and row["Minimum level's point type"] == "exp"
    assert "redeemed" not in " ".join(row).lower()  # the workers' count is no sheet's


def test_a_level_named_by_two_types_needs_its_type(tmp_path, types):
    spend, rank = types
    level(spend, "Gold", 5000)
    errors = refused(write(tmp_path, "items.csv", HEADER + "mug,A mug,,500,coins,,,,,,Gold,,,,editing\n"))
    assert f"row 2, column {LABELS['min_level']}: Several point types have a level named 'Gold' (coins, exp)" in errors
    assert f"say which in the column {LABELS['min_level_type']}" in errors
    import_items(write(tmp_path, "items2.csv", HEADER + "mug,A mug,,500,coins,,,,,,Gold,exp,,,editing\n"))
    assert RewardItem.objects.get(code="mug").min_level == rank.levels.get(name="Gold")


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("mug,A mug,,0,coins,,,,,,,,,,", "cost", "Points must be a positive whole number."),
        ("mug,A mug,,-3,coins,,,,,,,,,,", "cost", "Points must be a positive whole number."),
        ("mug,A mug,,5.5,coins,,,,,,,,,,", "cost", "Enter a whole number; '5.5' is not one."),
        ("mug,A mug,,1000000001,coins,,,,,,,,,,", "cost", "At most 1000000000 points in one amount"),
        ("mug,A mug,,,coins,,,,,,,,,,", "cost", "This field cannot be null."),
        ("mug,A mug,,5,gems,,,,,,,,,,", "point_type", "No point type has the code 'gems'; use one of:"),
        ("mug,A mug,,5,exp,,,,,,,,,,", "point_type", "Experience cannot be spent: choose a spendable point type."),
        ("mug,A mug,,5,coins,-1,,,,,,,,,", "stock", "greater than or equal to 0"),
        ("mug,A mug,,5,coins,,0,day,,,,,,,", "per_user_limit", "A limit per user must be at least 1"),
        ("mug,A mug,,5,coins,,,day,,,,,,,", "limit_period", "A limit period needs a limit per user"),
        ("mug,A mug,,5,coins,,1,fortnight,,,,,,,", "limit_period", "'fortnight' is not one of: day, week, month, year, none"),
        ("mug,A mug,,5,coins,,,,2026-12-02,2026-12-01,,,,,", "end_time", "The end of the window must be after its start."),
        ("mug,A mug,,5,coins,,,,,,Platinum,,,,", "min_level", "No level is named 'Platinum'."),
        ("mug,A mug,,5,coins,,,,,,Gold,coins,,,", "min_level", "coins has no level named 'Gold'; its levels: none"),
        ("mug,A mug,,5,coins,,,,,,,,,rewards/none.png,", "image", "There is no file rewards/none.png in the media storage"),
        ("mug,A mug,,5,coins,,,,,,,,,../../etc/passwd,", "image", "is not a path in the media storage"),
        ("mug,A mug,,5,coins,,,,,,,,,,sold", "status", "'sold' is not one of: editing, active, retired"),
        ('mug,"=HYPERLINK(""http://x"")",,5,coins,,,,,,,,,,', "name", "Looks like a spreadsheet formula"),
        ("mug,A mug,+cmd|' /C calc'!A0,5,coins,,,,,,,,,,", "description", "Looks like a spreadsheet formula"),
        ("mug,A mug," + "x" * 2001 + ",5,coins,,,,,,,,,,", "description", "at most 2000 characters"),
        ("mug mug,A mug,,5,coins,,,,,,,,,,", "code", "Enter a valid “slug”"),
    ],
)
def test_bad_values_are_refused_row_by_row_and_nothing_is_applied(tmp_path, types, row, column, message):
    good = "good,A good one,,5,coins,,,,,,,,,,\n"
    errors = refused(write(tmp_path, "items.csv", HEADER + good + row + "\n"))
    assert f"row 3, column {LABELS[column]}" in errors, errors
    assert message in errors, errors
    assert "row 2" not in errors
    assert not RewardItem.all_objects.exists()


def test_frozen_fields_of_an_active_item_are_refused_and_its_other_fields_may_change(tmp_path, types):
    spend, rank = types
    RewardItemFactory(code="mug", name="A mug", cost=500, point_type_id=spend.pk, stock=10, status="active")
    before = snapshot()
    errors = refused(
        write(
            tmp_path,
            "items.csv",
            HEADER + "mug,A mug,,450,,10,,,,,Gold,exp,,,active\nnew-one,New,,5,coins,,,,,,,,,,\n",
        )
    )
    assert f"row 2, column {LABELS['cost']}: cost cannot change while mug is active" in errors
    assert f"row 2, column {LABELS['point_type']}: point type cannot change while mug is active" in errors
    assert f"row 2, column {LABELS['min_level']}: minimum level cannot change while mug is active" in errors
    assert snapshot() == before and not RewardItem.objects.filter(code="new-one").exists()
    import_items(write(tmp_path, "items2.csv", HEADER + "mug,A big mug,,500,coins,20,,,,,,,,,active\n"))
    stored = RewardItem.objects.get(code="mug")
    assert (stored.name, stored.stock, stored.cost) == ("A big mug", 20, 500)


def test_the_stock_below_what_was_redeemed_is_refused(tmp_path, types):
    item = RewardItemFactory(code="mug", cost=500, point_type_id=types[0].pk, stock=10, status="active")
    RewardItem.objects.filter(pk=item.pk).update(redeemed_count=8)
    errors = refused(write(tmp_path, "items.csv", HEADER + f"mug,{item.name},,500,coins,7,,,,,,,,,active\n"))
    assert f"row 2, column {LABELS['stock']}: 8 have been redeemed already" in errors
    assert RewardItem.objects.get().stock == 10


def test_without_a_user_a_sheet_changes_no_status(tmp_path, types):
    RewardItemFactory(code="mug", cost=500, point_type_id=types[0].pk)
    errors = refused(write(tmp_path, "items.csv", HEADER + "mug,A mug,,500,coins,,,,,,,,,,active\n"))
    assert f"row 2, column {LABELS['status']}: You may not change the status from editing to active" in errors
    assert RewardItem.objects.get().status == "editing"


def test_an_editors_sheet_adds_drafts_but_activates_nothing(tmp_path, types):
    member("rule editors", "eddie")
    import_items(write(tmp_path, "items.csv", HEADER + "mug,A mug,,500,coins,,,,,,,,,,editing\n"), "--user", "eddie")
    assert RewardItem.objects.get().status == "editing"
    errors = refused(write(tmp_path, "items2.csv", HEADER + "mug,A mug,,500,coins,,,,,,,,,,active\n"), "--user", "eddie")
    assert "You may not change the status from editing to active" in errors
    assert RewardItem.objects.get().status == "editing"


def test_an_approver_may_not_import_at_all(tmp_path, types):
    member("rule approvers", "anna")
    with pytest.raises(CommandError, match="needs the rights to add and change reward items"):
        import_items(write(tmp_path, "items.csv", HEADER + "mug,A mug,,500,coins,,,,,,,,,,active\n"), "--user", "anna")
    assert not RewardItem.objects.exists()


def test_dry_run_applies_nothing(tmp_path, types):
    out = import_items(write(tmp_path, "items.csv", HEADER + "mug,A mug,,500,coins,,,,,,,,,,active\n"), "--dry-run", *AS_OP)
    assert "items: would apply: new 1" in out
    assert not RewardItem.objects.exists()


def test_an_xlsx_formula_cell_is_refused(tmp_path, types):
    book = openpyxl.Workbook()
    book.active.append(HEADER.strip().split(","))
    book.active.append(["mug", "A mug", None, "=2*250", "coins"])
    path = tmp_path / "items.xlsx"
    book.save(path)
    assert "Row 2, column D holds a formula" in str(refused_whole(str(path)))
    assert not RewardItem.objects.exists()


def refused_whole(path: str) -> CommandError:
    with pytest.raises(CommandError) as excinfo:
        import_items(path)
    return excinfo.value


def test_headers_may_be_the_labels_in_chinese(tmp_path, types):
    from django.utils import translation

    from apps.rewards.resources import RewardItemResource

    with translation.override("zh-hans"):
        labels = RewardItemResource.column_labels()
    path = write(
        tmp_path, "items.csv", f"{labels['code']},{labels['name']},{labels['cost']},{labels['point_type']}\nmug,A mug,5,coins\n"
    )
    import_items(path)
    assert RewardItem.objects.get().cost == 5


class TestAdminPages:
    CSV = str(SHEET_FORMATS.index(SHEET_FORMATS[0]))

    @pytest.fixture
    def client(self, client, op):
        client.force_login(op)
        return client

    def upload(self, client, content: bytes):
        return client.post(
            reverse("admin:rewards_rewarditem_import"),
            {"resource": "0", "format": self.CSV, "import_file": SimpleUploadedFile("items.csv", content)},
        )

    def test_a_bad_sheet_names_rows_and_columns_and_offers_no_confirm(self, client, op, types):
        page = self.upload(
            client, (HEADER + "good,Good,,5,coins,,,,,,,,,,\nbad,Bad,,-3,gems,,,,,,,,,,\n").encode()
        ).content.decode()
        assert "Nothing was imported." in page
        assert "row 3, column Cost" in page and "row 3, column Point type: No point type has the code &#x27;gems&#x27;" in page
        assert "Confirm import" not in page
        assert not RewardItem.objects.exists()

    def test_preview_then_confirm_applies_with_the_author_in_history(self, client, op, types):
        preview = self.upload(client, (HEADER + "mug,A mug,,500,coins,10,,,,,Gold,exp,,,editing\n").encode())
        page = preview.content.decode()
        assert "Confirm import" in page and "Nothing was imported" not in page
        assert not RewardItem.objects.exists(), "the preview applies nothing"
        form = preview.context["confirm_form"]
        client.post(
            reverse("admin:rewards_rewarditem_process_import"),
            {name: form.initial.get(name, "") for name in form.fields},
        )
        item = RewardItem.objects.get()
        assert (item.code, item.cost, item.min_level.name) == ("mug", 500, "Gold")
        assert item.history.latest().history_user == op

    def test_an_editor_confirming_a_sheet_that_activates_is_refused(self, client, types):
        RewardItemFactory(code="mug", cost=500, point_type_id=types[0].pk)
        client.force_login(member("rule editors", "eddie"))
        page = self.upload(client, (HEADER + "mug,A mug,,500,coins,,,,,,,,,,active\n").encode()).content.decode()
        assert "You may not change the status from editing to active" in page and "Confirm import" not in page
        assert RewardItem.objects.get().status == "editing"

    def test_export_page_writes_the_sheet(self, client, op, types):
        RewardItemFactory(code="mug", cost=500, point_type_id=types[0].pk)
        page = client.get(reverse("admin:rewards_rewarditem_export")).content.decode()
        assert "Minimum level&#x27;s point type" in page or "Minimum level's point type" in page
        response = client.post(
            reverse("admin:rewards_rewarditem_export"),
            {"format": self.CSV, "resource": "0", **{f"rewarditemresource_{name}": "on" for name in HEADER.strip().split(",")}},
        )
        assert response.status_code == 200, response.content.decode()[:2000]
        text = response.content.decode()
        assert text.startswith("Item code,Name,") and "mug," in text
