"""Calendar periods in the site's time zone (SPEC §4): days, Monday weeks, months, years, `none`."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.core.periods import DAY, LIFETIME_START, MONTH, NONE, WEEK, YEAR, next_period_start, period_bounds

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# Chile moves its clocks at local midnight: on the spring day, 00:00 never happens.
SANTIAGO = ZoneInfo("America/Santiago")

CALENDAR_PERIODS = [DAY, WEEK, MONTH, YEAR]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def hours_between(start: datetime, end: datetime) -> float:
    # Subtracting two datetimes that share a ZoneInfo ignores the offset change; go through UTC.
    return (end.astimezone(UTC) - start.astimezone(UTC)) / timedelta(hours=1)


class TestDay:
    def test_a_day_runs_from_local_midnight_to_the_next(self):
        start, end = period_bounds(DAY, local(SHANGHAI, 2026, 3, 10, 15, 45), SHANGHAI)

        assert start == local(SHANGHAI, 2026, 3, 10)
        assert end == local(SHANGHAI, 2026, 3, 11)

    def test_the_local_date_decides_not_the_utc_date(self):
        # 17:00 UTC on the 14th is 01:00 on the 15th in Shanghai.
        start, end = period_bounds(DAY, datetime(2026, 3, 14, 17, tzinfo=UTC), SHANGHAI)

        assert start == local(SHANGHAI, 2026, 3, 15)
        assert end == local(SHANGHAI, 2026, 3, 16)

    def test_the_same_instant_falls_in_different_days_in_different_zones(self):
        instant = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)

        assert period_bounds(DAY, instant, SHANGHAI)[0] == local(SHANGHAI, 2026, 3, 15)
        assert period_bounds(DAY, instant, NEW_YORK)[0] == local(NEW_YORK, 2026, 3, 14)

    def test_midnight_belongs_to_the_day_it_starts_and_the_end_is_excluded(self):
        midnight = local(SHANGHAI, 2026, 3, 11)

        assert period_bounds(DAY, midnight, SHANGHAI) == (midnight, local(SHANGHAI, 2026, 3, 12))
        assert period_bounds(DAY, midnight - timedelta(microseconds=1), SHANGHAI) == (local(SHANGHAI, 2026, 3, 10), midnight)

    def test_the_bounds_are_aware_and_the_instant_lies_inside(self):
        at = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)

        start, end = period_bounds(DAY, at, BERLIN)

        assert start.utcoffset() is not None and end.utcoffset() is not None
        assert start <= at < end


class TestDaylightSaving:
    @pytest.mark.parametrize(
        ("tz", "day", "hours"),
        [
            (NEW_YORK, date(2026, 3, 8), 23),
            (NEW_YORK, date(2026, 11, 1), 25),
            (BERLIN, date(2026, 3, 29), 23),
            (BERLIN, date(2026, 10, 25), 25),
            (NEW_YORK, date(2026, 3, 9), 24),
            (SANTIAGO, date(2026, 9, 6), 23),
            (SANTIAGO, date(2026, 4, 4), 25),
        ],
        ids=["ny-spring", "ny-autumn", "berlin-spring", "berlin-autumn", "ny-ordinary", "santiago-spring", "santiago-autumn"],
    )
    def test_a_day_across_a_clock_change_is_still_one_day(self, tz, day, hours):
        noon = local(tz, day.year, day.month, day.day, 12)

        start, end = period_bounds(DAY, noon, tz)

        assert start.astimezone(tz).date() == day
        assert end.astimezone(tz).date() == day + timedelta(days=1)
        assert hours_between(start, end) == hours

    @pytest.mark.parametrize("utc_hour", range(4, 29), ids=lambda h: f"{h:02d}Z")
    def test_every_instant_of_the_23_hour_day_is_in_it(self, utc_hour):
        # 2026-03-08 in New York runs from 05:00 UTC to 04:00 UTC the next day.
        at = datetime(2026, 3, 8, tzinfo=UTC) + timedelta(hours=utc_hour)

        start, end = period_bounds(DAY, at, NEW_YORK)

        expected_day = date(2026, 3, 8) if 5 <= utc_hour < 28 else (date(2026, 3, 7) if utc_hour < 5 else date(2026, 3, 9))
        assert start.astimezone(NEW_YORK).date() == expected_day
        assert start <= at < end

    def test_both_occurrences_of_the_repeated_hour_are_in_the_same_day(self):
        first = local(NEW_YORK, 2026, 11, 1, 1, 30)
        second = first.replace(fold=1)
        assert hours_between(first, second) == 1

        assert period_bounds(DAY, first, NEW_YORK) == period_bounds(DAY, second, NEW_YORK)
        assert period_bounds(DAY, second.astimezone(UTC), NEW_YORK)[0] == local(NEW_YORK, 2026, 11, 1)

    def test_the_spring_day_starts_when_the_clocks_reach_one_where_midnight_is_skipped(self):
        start, end = period_bounds(DAY, local(SANTIAGO, 2026, 9, 6, 12), SANTIAGO)

        assert start.astimezone(UTC) == datetime(2026, 9, 6, 4, tzinfo=UTC)  # 01:00 -03, the first instant of the day
        assert period_bounds(DAY, start - timedelta(microseconds=1), SANTIAGO)[1] == start

    @pytest.mark.parametrize(
        ("tz", "day"),
        [(SANTIAGO, date(2026, 9, 6)), (ZoneInfo("America/Havana"), date(2026, 11, 1))],
        ids=["santiago-skipped-midnight", "havana-repeated-midnight"],
    )
    def test_a_period_start_equals_the_same_instant_read_back_in_utc(self, tz, day):
        # A wall-clock time inside a DST gap or fold never equals a datetime in another zone (PEP 495).
        start, _ = period_bounds(DAY, local(tz, day.year, day.month, day.day, 12), tz)

        assert start == start.astimezone(UTC)

    @pytest.mark.parametrize(
        ("tz", "monday", "hours"),
        [(NEW_YORK, date(2026, 3, 2), 7 * 24 - 1), (BERLIN, date(2026, 10, 19), 7 * 24 + 1)],
        ids=["ny-spring", "berlin-autumn"],
    )
    def test_a_week_across_a_clock_change_is_one_week(self, tz, monday, hours):
        start, end = period_bounds(WEEK, local(tz, monday.year, monday.month, monday.day + 3), tz)

        assert start.astimezone(tz).date() == monday
        assert hours_between(start, end) == hours

    def test_a_month_across_a_clock_change_is_one_month(self):
        start, end = period_bounds(MONTH, local(BERLIN, 2026, 3, 15), BERLIN)

        assert (start, end) == (local(BERLIN, 2026, 3, 1), local(BERLIN, 2026, 4, 1))
        assert hours_between(start, end) == 31 * 24 - 1


class TestWeek:
    @pytest.mark.parametrize("day", range(2, 9), ids=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    def test_weeks_start_on_monday(self, day):
        start, end = period_bounds(WEEK, local(SHANGHAI, 2026, 3, day, 18), SHANGHAI)

        assert start == local(SHANGHAI, 2026, 3, 2)
        assert end == local(SHANGHAI, 2026, 3, 9)
        assert start.astimezone(SHANGHAI).weekday() == 0

    def test_sunday_night_is_still_the_old_week_and_monday_midnight_the_new_one(self):
        monday = local(SHANGHAI, 2026, 3, 9)

        assert period_bounds(WEEK, monday - timedelta(microseconds=1), SHANGHAI)[0] == local(SHANGHAI, 2026, 3, 2)
        assert period_bounds(WEEK, monday, SHANGHAI)[0] == monday

    def test_a_week_spans_the_turn_of_the_year(self):
        # 2026-12-31 is a Thursday.
        start, end = period_bounds(WEEK, local(SHANGHAI, 2026, 12, 31, 9), SHANGHAI)

        assert (start, end) == (local(SHANGHAI, 2026, 12, 28), local(SHANGHAI, 2027, 1, 4))
        assert period_bounds(WEEK, local(SHANGHAI, 2027, 1, 3, 23), SHANGHAI)[0] == start

    def test_a_week_spans_the_turn_of_a_month(self):
        start, end = period_bounds(WEEK, local(SHANGHAI, 2026, 4, 1), SHANGHAI)

        assert (start, end) == (local(SHANGHAI, 2026, 3, 30), local(SHANGHAI, 2026, 4, 6))


class TestMonth:
    @pytest.mark.parametrize("month", range(1, 13))
    def test_a_month_runs_from_the_first_to_the_first_of_the_next(self, month):
        start, end = period_bounds(MONTH, local(SHANGHAI, 2026, month, 15, 12), SHANGHAI)

        assert start == local(SHANGHAI, 2026, month, 1)
        assert end == (local(SHANGHAI, 2027, 1, 1) if month == 12 else local(SHANGHAI, 2026, month + 1, 1))

    @pytest.mark.parametrize(("year", "days"), [(2026, 28), (2028, 29), (2100, 28), (2000, 29)])
    def test_february_has_its_calendar_length(self, year, days):
        start, end = period_bounds(MONTH, local(SHANGHAI, year, 2, 10), SHANGHAI)

        assert end - start == timedelta(days=days)

    def test_the_last_instant_of_a_month_and_the_first_of_the_next(self):
        first_of_march = local(SHANGHAI, 2026, 3, 1)

        assert period_bounds(MONTH, first_of_march - timedelta(microseconds=1), SHANGHAI)[0] == local(SHANGHAI, 2026, 2, 1)
        assert period_bounds(MONTH, first_of_march, SHANGHAI)[0] == first_of_march

    def test_the_local_month_decides(self):
        # 16:30 UTC on 31 January is 00:30 on 1 February in Shanghai, still January in New York.
        instant = datetime(2026, 1, 31, 16, 30, tzinfo=UTC)

        assert period_bounds(MONTH, instant, SHANGHAI)[0] == local(SHANGHAI, 2026, 2, 1)
        assert period_bounds(MONTH, instant, NEW_YORK)[0] == local(NEW_YORK, 2026, 1, 1)


class TestYear:
    def test_a_year_runs_from_january_first_to_the_next(self):
        start, end = period_bounds(YEAR, local(SHANGHAI, 2026, 7, 4, 12), SHANGHAI)

        assert (start, end) == (local(SHANGHAI, 2026, 1, 1), local(SHANGHAI, 2027, 1, 1))

    def test_new_years_eve_and_new_years_day(self):
        new_year = local(SHANGHAI, 2027, 1, 1)

        assert period_bounds(YEAR, new_year - timedelta(microseconds=1), SHANGHAI)[0] == local(SHANGHAI, 2026, 1, 1)
        assert period_bounds(YEAR, new_year, SHANGHAI) == (new_year, local(SHANGHAI, 2028, 1, 1))

    def test_the_local_year_decides(self):
        instant = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)

        assert period_bounds(YEAR, instant, SHANGHAI)[0] == local(SHANGHAI, 2027, 1, 1)
        assert period_bounds(YEAR, instant, NEW_YORK)[0] == local(NEW_YORK, 2026, 1, 1)


class TestNone:
    @pytest.mark.parametrize(
        "at",
        [datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 3, 10, 12, tzinfo=SHANGHAI), datetime(2999, 12, 31, tzinfo=UTC)],
        ids=["epoch", "now", "far-future"],
    )
    def test_none_is_one_period_that_never_ends(self, at):
        assert period_bounds(NONE, at, SHANGHAI) == (LIFETIME_START, None)

    def test_there_is_no_period_after_none(self):
        assert next_period_start(NONE, LIFETIME_START, SHANGHAI) is None


class TestNextPeriodStart:
    @pytest.mark.parametrize(
        ("period", "start", "expected"),
        [
            (DAY, (2026, 2, 28), (2026, 3, 1)),
            (DAY, (2026, 12, 31), (2027, 1, 1)),
            (WEEK, (2026, 12, 28), (2027, 1, 4)),
            (MONTH, (2026, 11, 1), (2026, 12, 1)),
            (MONTH, (2026, 12, 1), (2027, 1, 1)),
            (YEAR, (2026, 1, 1), (2027, 1, 1)),
        ],
    )
    def test_the_next_period_starts_where_this_one_ends(self, period, start, expected):
        start_at = local(SHANGHAI, *start)

        assert next_period_start(period, start_at, SHANGHAI) == local(SHANGHAI, *expected)
        assert next_period_start(period, start_at, SHANGHAI) == period_bounds(period, start_at, SHANGHAI)[1]

    def test_a_start_read_back_in_utc_gives_the_same_next_start(self):
        # The database hands period starts back in UTC.
        start = local(NEW_YORK, 2026, 3, 7).astimezone(UTC)

        assert next_period_start(DAY, start, NEW_YORK) == local(NEW_YORK, 2026, 3, 8)

    @pytest.mark.parametrize("tz", [NEW_YORK, BERLIN, SANTIAGO], ids=str)
    def test_walking_day_by_day_visits_every_calendar_day_of_the_year_once(self, tz):
        start = period_bounds(DAY, local(tz, 2026, 1, 1, 12), tz)[0]
        days = []
        while start.astimezone(tz).year == 2026:
            days.append(start.astimezone(tz).date())
            start = next_period_start(DAY, start, tz)

        assert days == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]

    @pytest.mark.parametrize("period", [WEEK, MONTH, YEAR])
    def test_walking_longer_periods_across_years_steps_one_period_at_a_time(self, period):
        start = period_bounds(period, local(BERLIN, 2025, 6, 1), BERLIN)[0]
        for _ in range(30):
            nxt = next_period_start(period, start, BERLIN)
            assert nxt > start
            assert period_bounds(period, nxt - timedelta(microseconds=1), BERLIN)[0] == start
            assert period_bounds(period, nxt, BERLIN)[0] == nxt
            start = nxt


class TestEveryInstant:
    @pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, BERLIN, SANTIAGO], ids=str)
    @pytest.mark.parametrize("period", CALENDAR_PERIODS)
    def test_periods_tile_time_without_gaps_or_overlaps(self, tz, period):
        """Every instant of a year lies in its period, and each period ends where the next begins."""
        at = datetime(2026, 1, 1, tzinfo=UTC)
        while at.year == 2026:
            start, end = period_bounds(period, at, tz)
            assert start <= at < end
            assert period_bounds(period, end, tz)[0] == end
            assert next_period_start(period, start, tz) == end
            at += timedelta(hours=1, minutes=30)


@pytest.mark.parametrize("period", ["hour", "Day", ""])
def test_an_unknown_period_is_refused(period):
    with pytest.raises(ValueError, match="unknown period"):
        period_bounds(period, datetime(2026, 3, 10, tzinfo=UTC), SHANGHAI)


@pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, SANTIAGO])
@pytest.mark.parametrize("period", CALENDAR_PERIODS)
def test_next_period_start_remembered_is_the_one_computed_and_keeps_the_current_period(period, tz):
    from apps.core import periods

    periods._next_starts.clear()
    now = datetime(2026, 9, 6, 12, tzinfo=UTC)
    starts = [period_bounds(period, now - timedelta(days=day), tz)[0] for day in range(0, 800, 3)]
    current = period_bounds(period, now, tz)
    first = [next_period_start(period, start, tz) for start in starts]
    assert periods._latest[(period, tz)] == current  # asking for next starts did not evict it
    assert [next_period_start(period, start, tz) for start in starts] == first  # remembered: the same
    assert first == [periods._computed_bounds(period, start, tz)[1] for start in starts]
    assert all(period_bounds(period, start, tz) == (start, end) for start, end in zip(starts, first, strict=True))
    assert next_period_start(NONE, LIFETIME_START, tz) is None
