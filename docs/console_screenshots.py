"""Screenshots of the console's five busiest pages, for docs/console.md (issue 14).

Run against a server with the demo data (`manage.py migrate && manage.py demo_setup`):

    python docs/console_screenshots.py --base http://127.0.0.1:8000 --password "$(cat var/admin-password.txt)" \\
        --prefix stock --out docs/images/console

Seed some activity first (`manage.py seed_demo_data --users 200 --entries 3000 --days 20`) so the
lists and the user's page have rows. It signs in as `admin`, opens each page at 1280x900 in
headless Chromium (`CHROMIUM_PATH`, else `chromium` on PATH) and saves `<prefix>-<page>.png`. A
full-page picture bigger than `--max-kb` is replaced by the first screen (1280x900); unfold's
pages scroll inside their own frame, so theirs are the first screen anyway. The rule-sheet
preview exports the demo's rules as CSV and imports them back unchanged, stopping at the preview.
Needs only Playwright (in requirements.txt); the same script took the pictures of the unfold
trial (docs/images/console/unfold-trial.diff, run with django-unfold installed).
"""

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

PAGES = ("index", "scorerule-list", "scorerule-form", "user-page", "taskconfig-list", "sheet-preview")


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form [type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/admin/$"))


def first_href(page: Page, base: str, list_path: str, pattern: str) -> str:
    page.goto(f"{base}{list_path}")
    for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
        if re.search(pattern, href or ""):
            return f"{base}{href}"
    raise SystemExit(f"no link like {pattern} on {list_path}")


def sheet_preview(page: Page, base: str, workdir: Path) -> None:
    """Export the rules as CSV, then import the file: the page shown is the preview."""
    page.goto(f"{base}/admin/rules/scorerule/export/")
    page.select_option("select[name=format]", label="csv")
    with page.expect_download() as download:
        page.locator("form [type=submit]").last.click()
    sheet = workdir / "rules.csv"
    download.value.save_as(sheet)
    page.goto(f"{base}/admin/rules/scorerule/import/")
    page.set_input_files("input[name=import_file]", str(sheet))
    page.select_option("select[name=format]", label="csv")
    page.locator("form [type=submit]").last.click()
    page.wait_for_load_state("networkidle")


def shoot(page: Page, path: Path, max_kb: int) -> None:
    page.screenshot(path=path, full_page=True)
    if path.stat().st_size > max_kb * 1024:
        page.screenshot(path=path, full_page=False)
    print(f"{path} {path.stat().st_size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--prefix", required=True, help="stock or unfold")
    parser.add_argument("--out", default="docs/images/console", type=Path)
    parser.add_argument("--user-page-of", default="", help="a username to search for; else the first account listed")
    parser.add_argument("--max-kb", default=300, type=int)
    parser.add_argument("--only", nargs="*", choices=PAGES)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    base = args.base.rstrip("/")

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", accept_downloads=True)
        page = context.new_page()
        sign_in(page, base, args.username, args.password)
        for name in args.only or PAGES:
            if name == "index":
                page.goto(f"{base}/admin/")
            elif name == "scorerule-list":
                page.goto(f"{base}/admin/rules/scorerule/")
            elif name == "scorerule-form":
                page.goto(first_href(page, base, "/admin/rules/scorerule/", r"/admin/rules/scorerule/\d+/change/"))
            elif name == "user-page":
                accounts = f"/admin/ledger/account/?q={args.user_page_of}" if args.user_page_of else "/admin/ledger/account/"
                page.goto(first_href(page, base, accounts, r"/admin/ledger/account/user/\d+/"))
            elif name == "taskconfig-list":
                page.goto(f"{base}/admin/tasks/taskconfig/")
            elif name == "sheet-preview":
                sheet_preview(page, base, Path(tmp))
            page.wait_for_load_state("networkidle")
            shoot(page, args.out / f"{args.prefix}-{name}.png", args.max_kb)
        browser.close()


if __name__ == "__main__":
    main()
