"""Against a running `make run`: alice signs in, presses 签到, and her ledger entry appears."""

import re
import sys
import time

import requests

STARTUP_TIMEOUT_S = 300  # the first `make run` creates the virtualenv and migrates
ENTRY_TIMEOUT_S = 15


def main(base: str) -> int:
    session = requests.Session()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            login_page = session.get(f"{base}/accounts/login/", timeout=5)
            if login_page.ok:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            print(f"the site did not answer at {base} within {STARTUP_TIMEOUT_S} s")
            return 1
        time.sleep(1)

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    logged_in = session.post(
        f"{base}/accounts/login/",
        data={"username": "alice", "password": "demo12345", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    if "Log out" not in logged_in.text:
        print("alice could not log in")
        return 1
    answer = session.post(f"{base}/checkin/", headers={"X-CSRFToken": session.cookies["csrftoken"]}, timeout=10).json()
    print("POST /checkin/ ->", answer)
    if answer.get("code") not in (0, 1):
        return 1

    pressed = time.monotonic()
    while time.monotonic() - pressed < ENTRY_TIMEOUT_S:
        page = session.get(f"{base}/me/points/", timeout=10).text
        if 'class="entry"' in page:
            balance = re.search(r'id="balance">(-?\d+)<', page).group(1)
            print(f"ledger entry visible after {time.monotonic() - pressed:.1f} s; balance {balance}")
            return 0
        time.sleep(0.5)
    print(f"no ledger entry on /me/points/ within {ENTRY_TIMEOUT_S} s")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
