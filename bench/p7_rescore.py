"""P7: a late event or a reversal that re-scores a daily streak over 365 periods, against an in-order event.

Each round prepares three users with a year of daily sign-ins (a daily streak rule, N = 7, and the
demo's once-a-day sign-in point), all processed in order, with one day left out near the start.
Then, timed one after the other in the same round, each through `event_process` (the worker's
per-event path: one transaction under the account lock):

- in order: the first user signs in on the day after the year, the fast path;
- late: the second user's missing day arrives, which joins the two streaks it bridges: every later
  period's streak changes, so the re-score replays 365 periods and posts the difference;
- reversal: the third user's second-day sign-in is undone, which breaks the streak from there on.

Each side is represented by its median over the rounds; the SPEC's target is late / in order and
reversal / in order ≤ 25.

    .venv/bin/python bench/p7_rescore.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jifen_bench_p7 .venv/bin/python bench/p7_rescore.py
"""

import time
import uuid
from datetime import timedelta

from setup_django import median, setup

DAYS = 365
ROUNDS = 7
GAP = 3  # the day left out (counted from 0), near the start so the re-score covers the whole year
TARGET = 25


def main() -> None:
    setup()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.ledger.models import Account
    from apps.rules.models import ScoreRule
    from apps.tasks.models import TaskConfig
    from apps.tracking.events import Event
    from apps.tracking.services.pipeline import event_process, events_process_batch

    tz = ZoneInfo(settings.TIME_ZONE)
    TaskConfig.objects.create(task_type="sign-in", method="POST", interface_name=r"^/checkin/$", status="in_use")
    TaskConfig.objects.create(
        task_type="sign-in-undo", method="DELETE", interface_name=r"^/checkin/$", status="in_use", reverses="sign-in"
    )
    ScoreRule.objects.create(
        task_type="sign-in", score_type="week-streak", kind="streak", required_number_of_times=7, points=5, status="active"
    )
    ScoreRule.objects.create(task_type="sign-in", score_type="daily", points=1, award_limit_per_period=1, status="active")
    users = get_user_model().objects
    first_day = datetime(2025, 11, 1, 9, tzinfo=tz)

    def sign_in(user_id: int, day: int, task_type: str = "sign-in") -> Event:
        return Event(
            event_id=uuid.uuid4(),
            user_id=user_id,
            task_type=task_type,
            occurred_at=first_day + timedelta(days=day, minutes=user_id % 60),
        )

    def a_year(label: str) -> int:
        user = users.create(username=label)
        year = [sign_in(user.pk, day).to_payload() for day in range(DAYS) if day != GAP]
        for start in range(0, len(year), 100):
            events_process_batch(payloads=year[start : start + 100])
        return user.pk

    def timed(event: Event) -> float:
        started = time.perf_counter()
        event_process(event=event)
        return time.perf_counter() - started

    a_year("warmup")
    times: dict[str, list[float]] = {"in order": [], "late": [], "reversal": []}
    balances: dict[str, list[tuple[int, int]]] = {"late": [], "reversal": []}
    for n in range(ROUNDS):
        ordered, late, undone = a_year(f"in-order-{n}"), a_year(f"late-{n}"), a_year(f"reversal-{n}")
        times["in order"].append(timed(sign_in(ordered, DAYS)))
        before = Account.objects.get(user_id=late).balance
        times["late"].append(timed(sign_in(late, GAP)))
        balances["late"].append((before, Account.objects.get(user_id=late).balance))
        before = Account.objects.get(user_id=undone).balance
        times["reversal"].append(timed(sign_in(undone, 1, "sign-in-undo")))
        balances["reversal"].append((before, Account.objects.get(user_id=undone).balance))
    # The re-scores must have done their work, or the comparison would be meaningless.
    if any(after <= before for before, after in balances["late"]) or any(
        after >= before for before, after in balances["reversal"]
    ):
        raise SystemExit(f"a re-score did not change the balance as expected: {balances}")

    base = median(times["in order"])
    print(f"P7 inputs: {connection.vendor}, a daily streak and a daily point over {DAYS} days per user, {ROUNDS} rounds")
    for side, values in times.items():
        rounds = ", ".join(f"{v * 1000:.0f}" for v in values)
        print(f"  {side:>9}: median {median(values) * 1000:7.1f} ms  (rounds, ms: {rounds})")
    for side in ("late", "reversal"):
        ratio = median(times[side]) / base
        print(f"P7 ratio ({side} / in order) = {ratio:.1f} (target <= {TARGET}): {'OK' if ratio <= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
