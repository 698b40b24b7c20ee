"""Reads about task configs for the operator's tools."""

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db.models import Exists, Max, OuterRef
from django.utils.dateparse import parse_datetime

from apps.core.regex_examples import regex_examples
from apps.ledger.models import ScoreRecord
from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig, UserTaskRecord
from apps.tracking.models import FailedEvent, OutboxEvent
from apps.tracking.routing import Route, RouteTable, build_route_table


@dataclass(frozen=True)
class ConfigMatch:
    config: TaskConfig
    business_id: str


@dataclass(frozen=True)
class RequestRouting:
    """How the tracking middleware would route one request, and what else nearly matched."""

    method: str
    path: str
    match: ConfigMatch | None  # the in-use config the request completes
    outranked: list[ConfigMatch] = field(default_factory=list)  # in use, match too, lose on priority/id
    not_in_use: list[ConfigMatch] = field(default_factory=list)  # would match if they were in use
    other_methods: list[ConfigMatch] = field(default_factory=list)  # in use, match the path with another method


@dataclass(frozen=True)
class Shadow:
    """Another in-use config and a path that both it and the config being put in use match."""

    config: TaskConfig
    path: str
    rules: tuple[ScoreRule, ...]  # the active rules that would not pay for that path


@dataclass(frozen=True)
class Shadowing:
    """What putting a config in use would change in routing, judged on example paths of both regexes."""

    takes_over: tuple[Shadow, ...]  # in-use configs that would lose paths to it: their rules stop paying there
    outranked_by: tuple[Shadow, ...]  # in-use configs that keep paths it also matches: its rules get nothing there

    def __bool__(self) -> bool:
        return bool(self.takes_over or self.outranked_by)


def live_rules_of(*, task_type: str) -> tuple[ScoreRule, ...]:
    """The active rules of a task type, read now (not the workers' cache): what pays for its completions."""
    return tuple(ScoreRule.objects.filter(task_type=task_type, status=ScoreRule.Status.ACTIVE).order_by("id"))


def config_shadowing(*, config: TaskConfig) -> Shadowing:
    """Which in-use configs of the same method `config` would shadow, or be shadowed by, if put in use.

    Routing gives a request to the highest-priority matching config (then the oldest), so a new
    config that matches the paths of one in use takes them over silently. Each config's regex is
    tried on example paths of the other's (apps.core.regex_examples) through the middleware's own
    route table, before and after; one example per pair is shown.
    """
    try:
        mine = Route.from_config(config)
    except re.error:
        return Shadowing((), ())
    others = list(TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE, method=config.method).exclude(pk=config.pk))
    routes = [Route.from_config(other) for other in others]
    before, after = RouteTable(routes), RouteTable([*routes, mine])
    own_examples = regex_examples(config.interface_name)
    takes_over, outranked_by = [], []
    for other in others:
        lost = kept = None
        for path in (*regex_examples(other.interface_name), *own_examples):
            was, now = before.match(config.method, path), after.match(config.method, path)
            if lost is None and was and was.route.config_id == other.pk and now and now.route.config_id == config.pk:
                lost = path
            if kept is None and now and now.route.config_id == other.pk and mine.regex.fullmatch(path):
                kept = path
        if lost is not None:
            takes_over.append(Shadow(other, lost, live_rules_of(task_type=other.task_type)))
        if kept is not None:
            outranked_by.append(Shadow(other, kept, live_rules_of(task_type=config.task_type)))
    return Shadowing(tuple(takes_over), tuple(outranked_by))


def request_path(text: str) -> str:
    """The path the middleware would see for `text`: a path, or a pasted URL without host and query."""
    parts = urlsplit(text.strip())
    return parts.path or "/"


def request_routing_explain(*, method: str, path: str) -> RequestRouting:
    """Route `method path` with the middleware's own code, over a route table built fresh.

    The table is built from the database now rather than taken from the process cache, so a
    config put in use a moment ago shows. Every live config is also tried on its own, to say
    why a request matched nothing (a draft, a deprecated config, another method).
    """
    method = method.upper()
    found = build_route_table().match(method, path)
    configs = {config.pk: config for config in TaskConfig.objects.order_by("-priority", "id")}
    routing = RequestRouting(
        method=method,
        path=path,
        match=ConfigMatch(configs[found.route.config_id], found.business_id) if found else None,
    )
    for config in configs.values():
        if routing.match and config.pk == routing.match.config.pk:
            continue
        try:
            # A table of one: the same matching and business-id code as the middleware's.
            alone = RouteTable([Route.from_config(config)])
        except re.error:
            continue
        same_method = alone.match(method, path)
        if same_method is not None:
            hit = ConfigMatch(config, same_method.business_id)
            if config.status == TaskConfig.Status.IN_USE:
                routing.outranked.append(hit)
            else:
                routing.not_in_use.append(hit)
        elif config.status == TaskConfig.Status.IN_USE:
            other = alone.match(config.method, path)
            if other is not None:
                routing.other_methods.append(ConfigMatch(config, other.business_id))
    return routing


# "Why no points?": an operator's question about one user's completion, answered from the
# decisions the engine recorded on it, never by running the rules again.

WHY_WINDOW = timedelta(hours=1)  # how far around the operator's time to look for the completion
WHY_RECENT = 20  # completions offered to pick from


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's recorded decision on a completion, with its rule and ledger entry if any."""

    decision: dict
    rule: ScoreRule | None  # None if the rule has since been deleted
    entry: ScoreRecord | None  # the award this decision posted


@dataclass(frozen=True)
class CompletionWhy:
    record: UserTaskRecord
    verdicts: list[RuleVerdict]


@dataclass(frozen=True)
class PendingEvent:
    """An event of the user's that has not become a completion: parked after failing, or waiting in the outbox."""

    kind: str  # "parked" or "outbox"
    obj: FailedEvent | OutboxEvent
    occurred_at: datetime | None


@dataclass(frozen=True)
class RequestWhy:
    """What became of a user's request: how it routes, and what was recorded for it around a time."""

    routing: RequestRouting
    around: datetime
    completions: list[CompletionWhy]
    pending: list[PendingEvent]


def user_recent_completions(*, user_id: int, limit: int = WHY_RECENT) -> list[UserTaskRecord]:
    return list(UserTaskRecord.objects.filter(user_id=user_id).select_related("task").order_by("-id")[:limit])


def completions_explain(*, records: list[UserTaskRecord]) -> list[CompletionWhy]:
    """Each completion's recorded decisions, rule by rule, with the award entries they posted (3 queries)."""
    rule_ids = {d.get("rule_id") for record in records for d in record.decisions if d.get("rule_id")}
    rules = ScoreRule.objects.in_bulk(rule_ids) if rule_ids else {}
    awards = ScoreRecord.objects.filter(completion__in=[record.pk for record in records], kind=ScoreRecord.Kind.AWARD).only(
        "id", "serial_number", "trade_amount", "completion_id", "rule_id"
    )
    # The live award of each (completion, rule); one a re-score took back shows only if none is live.
    awards = awards.annotate(taken_back=Exists(ScoreRecord.objects.filter(reverses=OuterRef("pk")))).order_by("taken_back", "-id")
    entries: dict = {}
    for entry in awards if records else ():
        entries.setdefault((entry.completion_id, entry.rule_id), entry)
    return [
        CompletionWhy(
            record,
            [RuleVerdict(d, rules.get(d.get("rule_id")), entries.get((record.pk, d.get("rule_id")))) for d in record.decisions],
        )
        for record in records
    ]


def completion_explain(*, user_id: int, completion_id: int) -> CompletionWhy | None:
    """One of the user's completions explained; None if it is not theirs."""
    record = UserTaskRecord.objects.filter(user_id=user_id, pk=completion_id).select_related("task").first()
    return completions_explain(records=[record])[0] if record else None


def _pending_events(*, user_id: int, task_type: str, around: datetime) -> list[PendingEvent]:
    """The user's parked and outbox events of this task near `around` (the newest hundred of each looked at)."""
    found = []
    sources = (
        ("parked", FailedEvent.objects.filter(status=FailedEvent.Status.FAILED).order_by("-id")),
        ("outbox", OutboxEvent.objects.order_by("-id")),
    )
    for kind, queryset in sources:
        for obj in queryset.filter(payload__user_id=user_id, payload__task_type=task_type)[:100]:
            occurred_at = parse_datetime(str(obj.payload.get("occurred_at", "")))
            # An event whose time cannot be read is shown anyway: it may well be the one asked about.
            if occurred_at is None or abs(occurred_at - around) <= WHY_WINDOW:
                found.append(PendingEvent(kind, obj, occurred_at))
    return found


def request_explain(*, user_id: int, method: str, path: str, around: datetime) -> RequestWhy:
    """Route `method path` as the middleware would, then find the user's completions of it within WHY_WINDOW."""
    routing = request_routing_explain(method=method, path=path)
    if routing.match is None:
        return RequestWhy(routing, around, [], [])
    task_type = routing.match.config.task_type
    records = list(
        UserTaskRecord.objects.filter(
            user_id=user_id,
            task__task_type=task_type,
            business_id=routing.match.business_id,
            occurred_at__range=(around - WHY_WINDOW, around + WHY_WINDOW),
        )
        .select_related("task")
        .order_by("occurred_at", "id")[:WHY_RECENT]
    )
    pending = [] if records else _pending_events(user_id=user_id, task_type=task_type, around=around)
    return RequestWhy(routing, around, completions_explain(records=records), pending)


def recorded_event_ids(*, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `event_ids` whose completion is recorded already (one query)."""
    wanted = list(event_ids)
    if not wanted:
        return set()
    return set(UserTaskRecord.objects.filter(event_id__in=wanted).values_list("event_id", flat=True))


def latest_reversals(*, keys: Iterable[tuple[int, str, str]]) -> dict[tuple[int, str, str], datetime]:
    """{(user id, reversed task type, business id): when the latest reversal of it occurred}, for `keys` (one query).

    A new completion at or before that time may be one a reversal undoes (SPEC §6): the pipeline
    pairs it in time order instead of scoring it on the fast path.
    """
    keys = set(keys)
    if not keys:
        return {}
    rows = (
        UserTaskRecord.objects.filter(
            user_id__in={user for user, _, _ in keys},
            task__reverses__in={task for _, task, _ in keys},
            business_id__in={business for _, _, business in keys},
            deleted_at__isnull=True,
        )
        .values_list("user_id", "task__reverses", "business_id")
        .annotate(latest=Max("occurred_at"))
    )
    return {(user, task, business): latest for user, task, business, latest in rows if (user, task, business) in keys}


@dataclass(frozen=True)
class PendingReversal:
    """A reversal that has found nothing to undo yet: a completion that arrives later and that it undoes earns nothing."""

    record: UserTaskRecord
    reverses: str  # the task type it undoes


def pending_reversals(*, user_id: int, limit: int = WHY_RECENT) -> list[PendingReversal]:
    """The user's reversals that undo nothing yet, newest first."""
    undoing = UserTaskRecord.objects.filter(reversed_by=OuterRef("pk"))
    records = (
        UserTaskRecord.objects.filter(user_id=user_id, task__reverses__gt="", deleted_at__isnull=True)
        .exclude(Exists(undoing))
        .select_related("task")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [PendingReversal(record, record.task.reverses) for record in records]
