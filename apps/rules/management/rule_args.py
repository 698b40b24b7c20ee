"""Arguments shared by the rules app's commands: a rule by its code, a moment, the operator (--user)."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime

from apps.rules.models import ScoreRule


def rule_by_code(score_type: str) -> ScoreRule:
    rule = ScoreRule.objects.filter(score_type=score_type).first()
    if rule is None:
        raise CommandError(f"no rule has the code {score_type!r}")
    return rule


USER_HELP = "the operator acting, recorded in history; their roles decide what the command may do"


def operator_by_username(username: str | None):
    """The active user called `username` (None for None: the command acts as the system); CommandError if none."""
    if username is None:
        return None
    users = get_user_model()._default_manager
    user = users.filter(**{users.model.USERNAME_FIELD: username}, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user is called {username}.")
    return user


def parse_moment(text: str, option: str) -> datetime:
    """An ISO date (its local midnight) or time; naive ones are read in the site's time zone (first occurrence)."""
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime.combine(day, time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"{option}: not a date or time: {text!r} (use e.g. 2026-11-01 or 2026-11-01T08:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    return moment
