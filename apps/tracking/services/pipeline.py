"""Moving events from the web process to the workers, and processing them there."""

import logging
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import metrics
from apps.core.log_context import log_context, log_fields
from apps.core.multirow import fetch, int_list, read_uuid, uuid_list
from apps.ledger.models import Account
from apps.ledger.services.entries import EntryMeta, accounts_ensure, accounts_lock
from apps.rules.models import ScoreRule
from apps.rules.selectors.rules import active_rules_for
from apps.rules.services.rescore import Cause, Rescore, completions_rescore
from apps.rules.services.scoring import ScoringItem, ScoringPlan, capped_rules_lock, completions_plan, scoring_plan_write
from apps.tasks.models import TaskConfig, UserTaskRecord
from apps.tasks.selectors import latest_reversals
from apps.tasks.services import LiveChange, NewCompletion, completions_create, reversals_pair
from apps.tracking.events import ACCEPTED_AT, Event, EventError
from apps.tracking.handoff import HandoffUnavailable, handoff, uses_inbox, worker_inbox
from apps.tracking.inbox import Batch, RedisInbox
from apps.tracking.models import FailedEvent, Heartbeat, OutboxEvent
from apps.tracking.services.parking import event_park, failed_event_sendable

logger = logging.getLogger(__name__)

OUTBOX_BATCH = 500


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # this event_id was processed before
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_USER = "unknown_user"


def event_log_fields(event: Event, *, source: str | None = None) -> dict:
    """An event's log fields, for one call's `extra=` (cheaper than a `log_context` block around it)."""
    fields = {"event_id": event.event_id, "user_id": event.user_id, "task_type": event.task_type}
    if source is not None:  # else the block's source, if any, stays
        fields["source"] = source
    return fields


def event_dispatch(*, event: Event, source: str = metrics.SOURCE_MIDDLEWARE) -> str:
    """Hand the event to the workers; if the broker cannot take it, keep it in the outbox instead.

    Returns where it went, "broker" or "outbox". `source` (the middleware, or ingest_events --async)
    names the caller in the log lines and is the label it is counted accepted under.
    """
    payload = event.to_payload()
    payload[ACCEPTED_AT] = time.time()  # wall clock: the worker that records it may be on another host
    try:
        handoff().send([payload])
    except HandoffUnavailable as exc:
        logger.warning(
            "event %s for user %s kept in the outbox: %s",
            event.event_id,
            event.user_id,
            exc,
            extra=event_log_fields(event, source=source),
        )
        OutboxEvent.objects.get_or_create(event_id=event.event_id, defaults={"payload": payload, "last_error": str(exc)[:2000]})
        _count_accepted(source)
        return "outbox"
    _count_accepted(source)
    # At DEBUG: this is the request path, where a line written costs ~10 us, 4-6 % of what a tracked
    # request adds (P1, docs/production.md#logs); the worker's INFO line carries the event's id.
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "event %s for user %s (%s) handed to the broker",
            event.event_id,
            event.user_id,
            event.task_type,
            extra=event_log_fields(event, source=source),
        )
    return "broker"


def _count_accepted(source: str) -> None:
    # Kept by the broker or the outbox by now (autocommit: the outbox row is committed). One
    # pre-bound increment on the request path; the rarer ingest looks its label up.
    if source == metrics.SOURCE_MIDDLEWARE:
        metrics.ACCEPTED_FROM_MIDDLEWARE.inc()
    else:
        metrics.EVENTS_ACCEPTED.labels(source=source).inc()


def outbox_flush(*, limit: int = OUTBOX_BATCH) -> int:
    """Hand waiting outbox events to the workers, oldest first; return how many went.

    The rows are deleted in the transaction that handed them over. If that commit fails after
    the hand-off, the events go again later and processing skips them by their event_id.
    """
    with transaction.atomic():
        rows = list(OutboxEvent.objects.select_for_update(skip_locked=True).order_by("created_at", "id")[:limit])
        if not rows:
            return 0
        try:
            handoff().send([row.payload for row in rows])
        except HandoffUnavailable as exc:
            OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).update(
                attempts=F("attempts") + 1, last_error=str(exc)[:2000]
            )
            logger.warning("outbox: %d events still waiting: %s", len(rows), exc)
            return 0
        OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def _recorded(events: list[Event]) -> set[uuid.UUID]:
    """The event ids among `events` that are recorded already (one query)."""
    if not events:
        return set()
    table = UserTaskRecord._meta.db_table
    rows = fetch(f"SELECT event_id FROM {table} WHERE event_id IN ({uuid_list(event.event_id for event in events)})")  # noqa: S608 - UUIDs only
    return {read_uuid(event_id) for (event_id,) in rows}


def _new_completion(event: Event, config: TaskConfig, decisions: list[dict]) -> NewCompletion:
    return NewCompletion(
        task_id=config.pk,
        user_id=event.user_id,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        business_id=event.business_id,
        method=event.method,
        path=event.path,
        status_code=event.status,
        location=event.location,
        country=event.country,
        lang_type=event.lang_type,
        decisions=decisions,
    )


def _meta(event: Event) -> EntryMeta:
    return EntryMeta(location=event.location, country=event.country, lang_type=event.lang_type)


def _item(event: Event, config: TaskConfig) -> ScoringItem:
    return ScoringItem(
        user_id=event.user_id,
        task_type=config.task_type,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        business_id=event.business_id,
        meta=_meta(event),
    )


def _job_add(jobs: dict[tuple[int, int], Rescore], job: Rescore) -> None:
    """Keep one re-score per user and rule, from the earliest period any change asks for."""
    key = (job.user_id, job.rule_id)
    if key not in jobs or job.since < jobs[key].since:
        jobs[key] = job


def _count_on_commit(counts: Counter, accepted_at: list[float]) -> None:
    """Count the batch's outcomes, and each recorded event's time from acceptance, once it commits.

    Here rather than in the callers: every way an event is recorded (a batch, one event alone,
    ingest_events) goes through `_apply` in its transaction, and a batch that rolls back (to be
    tried event by event) counts nothing.
    """
    processed, duplicate = counts[str(Outcome.PROCESSED)], counts[str(Outcome.DUPLICATE)]

    def count() -> None:
        if processed:
            metrics.EVENTS_PROCESSED.inc(processed)
        if duplicate:
            metrics.EVENTS_DUPLICATE.inc(duplicate)
        committed = time.time()
        for at in accepted_at:
            # A clock behind the web's by a little makes a tiny negative: it is "at once".
            metrics.EVENT_TO_LEDGER.observe(max(committed - at, 0.0))

    metrics.after_commit(count)


def _rules_touched(task_type: str, change: LiveChange) -> list[int]:
    """The rules to re-score when a completion of `task_type` changes live state: the active ones, and
    any other (retired since) that decided it."""
    rule_ids = [rule.pk for rule in active_rules_for(task_type=task_type)]
    return rule_ids + [d["rule_id"] for d in change.decisions if d.get("rule_id") and d["rule_id"] not in rule_ids]


def _apply(events: list[tuple[Event, TaskConfig]], accounts: dict[int, Account], reversible: set[str]) -> Counter:
    """Record and score `events` (by user id, each user's in (occurred_at, event_id) order) under their users' account locks.

    An event_id recorded before, or earlier in `events`, is a duplicate: under the account lock no
    one else can record this user's event meanwhile, and the unique constraint on event_id still
    has the last word (an IntegrityError aborts the transaction; a retry finds the event recorded).

    In-order completions take the fast path: decided together and written with one statement per
    table. What would make the ledger depend on arrival order instead re-scores the user and rule
    once everything is recorded (SPEC §6, `apps.rules.services.rescore`): a completion late for a
    rule, a reversal, and a completion that a reversal recorded before it undoes (`reversible`
    holds the task types some config reverses).
    """
    counts: Counter = Counter()
    seen = _recorded([event for event, _ in events])
    fresh: list[tuple[Event, TaskConfig]] = []
    trail: list[tuple[Event, str]] = []
    for event, config in events:
        if event.event_id in seen:
            counts[str(Outcome.DUPLICATE)] += 1
            trail.append((event, "already recorded; skipped"))
            continue
        seen.add(event.event_id)
        fresh.append((event, config))
        counts[str(Outcome.PROCESSED)] += 1
    _count_on_commit(counts, [event.accepted_at for event, _ in fresh if event.accepted_at is not None])
    if not fresh:
        _trail_on_commit(trail)
        return counts
    latest = latest_reversals(keys=[(e.user_id, c.task_type, e.business_id) for e, c in fresh if c.task_type in reversible])
    undone = frozenset(
        index
        for index, (event, config) in enumerate(fresh)
        if (at := latest.get((event.user_id, config.task_type, event.business_id))) is not None and at >= event.occurred_at
    )
    # Rules after accounts, in id order: the capped places this batch (and its re-scores) may take.
    capped_rules_lock(task_types={config.task_type for _, config in fresh} | {c.reverses for _, c in fresh if c.reverses})
    plan = completions_plan(items=[_item(event, config) for event, config in fresh], rescored=undone)
    ids = completions_create(
        completions=[
            _new_completion(event, config, [decision.as_record() for decision in decisions])
            for (event, config), decisions in zip(fresh, plan.decisions, strict=True)
        ]
    )
    scoring_plan_write(plan=plan, completion_ids=ids, accounts=accounts)
    _trail_on_commit(trail + _processed_trail(fresh, plan) if logger.isEnabledFor(logging.INFO) else [])

    jobs: dict[tuple[int, int], Rescore] = {}
    by_event = {event.event_id: pk for (event, _), pk in zip(fresh, ids, strict=True)}
    for (user_id, rule_id), item in plan.late.items():
        _job_add(jobs, Rescore(user_id, rule_id, item.occurred_at, Cause.LATE, item.occurred_at, by_event[item.event_id]))
    # Pair reversals with what they undo, in time order, wherever this batch brought a reversal or a
    # completion one may undo; each completion whose live state changed re-scores its rules.
    pairings: dict[tuple[int, str, str], tuple[Event, int]] = {}
    for index, ((event, config), pk) in enumerate(zip(fresh, ids, strict=True)):
        if config.reverses:
            pairings.setdefault((event.user_id, config.reverses, event.business_id), (event, pk))
        elif index in undone:
            pairings.setdefault((event.user_id, config.task_type, event.business_id), (event, pk))
    for (user_id, task_type, business_id), (event, pk) in sorted(pairings.items(), key=lambda item: item[0]):
        for change in reversals_pair(user_id=user_id, task_type=task_type, business_id=business_id):
            for rule_id in _rules_touched(task_type, change):
                _job_add(jobs, Rescore(user_id, rule_id, change.occurred_at, Cause.REVERSAL, event.occurred_at, pk))
    if jobs:
        rules = ScoreRule.objects.in_bulk(sorted({rule_id for _, rule_id in jobs}))
        event_of = {pk: event_id for event_id, pk in by_event.items()}
        for (user_id, rule_id), job in sorted(jobs.items()):
            if rule_id in rules:
                # The re-score's own line names the user and rule; the event that caused it is known only here.
                with log_context(event_id=event_of.get(job.completion_id)):
                    completions_rescore(account=accounts[user_id], rule=rules[rule_id], job=job)
    return counts


def _processed_trail(fresh: list[tuple[Event, TaskConfig]], plan: ScoringPlan) -> list[tuple[Event, str]]:
    """What each recorded event earned: every rule's decision, and the keys of its ledger entries."""
    keys: dict[int, list[str]] = {}
    for index, spec, _row, decision in plan.awards:
        if decision.points:  # the idempotency keys scoring_plan_write gives the entries
            keys.setdefault(index, []).append(f"award:{plan.items[index].event_id}:{spec.id}")
    late = {item.event_id for item in plan.late.values()}
    trail = []
    for index, ((event, _config), decisions) in enumerate(zip(fresh, plan.decisions, strict=True)):
        rules = ", ".join(f"{d.rule_code} {d.reason}" + (f" {d.points:+d}" if d.points else "") for d in decisions)
        rules = rules or ("late: its rules re-score the user" if event.event_id in late else "no active rule")
        entries = ", ".join(keys.get(index, ())) or "none"
        trail.append((event, f"processed: {rules}; ledger entries: {entries}"))
    return trail


def _trail_on_commit(trail: list[tuple[Event, str]]) -> None:
    """Log one INFO line per event of `trail` once the transaction commits (a rolled-back batch said nothing)."""
    if trail and logger.isEnabledFor(logging.INFO):
        fields = log_fields()  # the batch's, whenever the commit comes
        transaction.on_commit(lambda: _trail_log(trail, fields))


def _trail_log(trail: list[tuple[Event, str]], fields: Mapping[str, object]) -> None:
    with log_context(**fields):
        _trail_lines(trail)


def _trail_lines(trail: list[tuple[Event, str]]) -> None:
    for event, what in trail:
        fields = event_log_fields(event)
        logger.info("event %s for user %s (%s) %s", event.event_id, event.user_id, event.task_type, what, extra=fields)


def _screen(events: list[Event]) -> tuple[list[tuple[Event, TaskConfig]], Counter, set[str]]:
    """Split off events whose task or user does not exist; return the rest with their configs, in
    (user id, occurred_at, event_id) order, the outcome counts, and which of their task types some
    config reverses.

    Creates the accounts the remaining users lack, so that a batch can lock them all at once.
    """
    types = {e.task_type for e in events}
    configs, reversible = {}, set()
    for config in TaskConfig.objects.filter(Q(task_type__in=types) | Q(reverses__in=types)):
        if config.task_type in types:
            configs[config.task_type] = config
        if config.reverses in types:
            reversible.add(config.reverses)
    user_model = get_user_model()
    pk = user_model._meta.pk.column
    users = dict(
        fetch(
            f"SELECT u.{pk}, a.id FROM {user_model._meta.db_table} u LEFT JOIN {Account._meta.db_table} a "  # noqa: S608 - integers only
            f"ON a.user_id = u.{pk} WHERE u.{pk} IN ({int_list(sorted({e.user_id for e in events}))})"
        )
        if events
        else ()
    )
    ready, counts = [], Counter()
    for event in events:
        if event.task_type not in configs:
            logger.warning(
                "event %s for user %s names unknown task type %r; skipped",
                event.event_id,
                event.user_id,
                event.task_type,
                extra=event_log_fields(event),
            )
            counts[str(Outcome.UNKNOWN_TASK)] += 1
        elif event.user_id not in users:
            fields = event_log_fields(event)
            logger.warning("event %s names unknown user %s; skipped", event.event_id, event.user_id, extra=fields)
            counts[str(Outcome.UNKNOWN_USER)] += 1
        else:
            ready.append((event, configs[event.task_type]))
    lacking = sorted({event.user_id for event, _ in ready if users[event.user_id] is None})
    if lacking:
        accounts_ensure(user_ids=lacking)
    # Each user's events in time order: in-order completions take the fast path, and the batch
    # decides them as the time-ordered replay would.
    ready.sort(key=lambda item: (item[0].user_id, item[0].occurred_at, item[0].event_id.hex))
    return ready, counts, reversible


def _process_locked(
    events: list[tuple[Event, TaskConfig]], *, skip_locked: bool, reversible: set[str]
) -> tuple[set[int], Counter]:
    """One transaction: lock the events' accounts (all, or with `skip_locked` those free now) and apply their events.

    Returns the users whose events were applied, and the outcome counts. A deadlock or a
    serialization failure (another transaction won a race) is retried here, within a second,
    rather than left for the sweep (G7); any other database error goes to the caller.
    """
    for attempt in range(1, _RACE_RETRIES + 1):
        try:
            with transaction.atomic():
                accounts = accounts_lock(user_ids=sorted({event.user_id for event, _ in events}), skip_locked=skip_locked)
                counts = _apply([item for item in events if item[0].user_id in accounts], accounts, reversible)
            return set(accounts), counts
        except OperationalError as exc:
            # Inside a caller's transaction the whole of it is aborted: only the caller can retry.
            if attempt == _RACE_RETRIES or connection.in_atomic_block or not lost_a_race(exc):
                raise
            logger.warning(
                "a batch of %d events met %s; trying again (attempt %d of %d)",
                len(events),
                getattr(exc.__cause__, "sqlstate", None) or exc,
                attempt + 1,
                _RACE_RETRIES,
            )
            time.sleep(_RACE_BACKOFF_S * 2**attempt * (1 + random.random()))  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


# A transaction that lost a race (SQLSTATE class 40: deadlock, serialization failure) is tried again.
_RACE_RETRIES = 4
_RACE_BACKOFF_S = 0.05
_RACE_SQLSTATES = {"40001", "40P01"}


def lost_a_race(exc: BaseException) -> bool:
    """Whether a database error is a deadlock or serialization failure, which trying again resolves."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in _RACE_SQLSTATES or getattr(cause, "pgcode", None) in _RACE_SQLSTATES


def event_process(*, event: Event) -> Outcome:
    """Record the completion and apply every rule to it, in one transaction, exactly once."""
    ready, counts, reversible = _screen([event])
    if not ready:
        return Outcome(next(iter(counts)))
    # The account lock comes first: it serializes all of this user's events, so progress,
    # recipients and balance are read and written by one worker at a time.
    done, counts = _process_locked(ready, skip_locked=False, reversible=reversible)
    if not done:
        raise RuntimeError(f"user {event.user_id} has no account")  # deleted since _screen created it
    return Outcome(next(iter(counts)))


def _database_answers() -> bool:
    """Whether the database answers a trivial query now (so an error was the event's, not an outage)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def _process_alone(event: Event, payload: dict) -> str:
    """Try one event on its own up to JIFEN_MAX_ATTEMPTS times, then park it.

    Any exception counts as a failed try, an OperationalError too (on SQLite an integer overflow is
    one), as long as the database still answers; if it does not, the error is the database's: it is
    raised, and the whole batch comes back later.
    """
    error = ""
    for attempt in range(1, settings.JIFEN_MAX_ATTEMPTS + 1):
        try:
            return str(event_process(event=event))
        except OperationalError:
            if not _database_answers():
                raise
            error = _failure(event, attempt)
        except Exception:
            error = _failure(event, attempt)
    event_park(payload=payload, error=error, attempts=settings.JIFEN_MAX_ATTEMPTS)
    return "parked"


def _failure(event: Event, attempt: int) -> str:
    """The exception being handled, as the parked event's error; logged (with its traceback on the last try)."""
    exc = sys.exc_info()[1]
    error = f"{type(exc).__name__}: {exc}"
    last = attempt == settings.JIFEN_MAX_ATTEMPTS  # one traceback per parked event is enough
    logger.warning(
        "event %s for user %s failed (attempt %d): %s",
        event.event_id,
        event.user_id,
        attempt,
        error,
        exc_info=last,
        extra=event_log_fields(event),
    )
    return error


def event_payload_process(*, payload: object) -> str:
    """Process one queued payload, parking it if it is malformed or fails every try; returns the outcome."""
    try:
        event = Event.from_payload(payload)
    except EventError as exc:
        event_park(payload=payload, error=f"malformed: {exc}", attempts=1)
        return "parked"
    return _process_alone(event, payload)


def events_process_batch(*, payloads: list[dict], put_back: Callable[[list[dict]], None] | None = None) -> Counter:
    """Process a batch in one transaction; if that fails, each event alone, parking the poison ones.

    Every account of the batch is locked in one statement, in ascending user id order, before
    any other write, so concurrent batches cannot deadlock. On PostgreSQL that statement skips
    the accounts another batch holds right now: the events of those users are handed to
    `put_back` (the inbox takes them back for a later batch) when given, else, or when nothing
    else could be done, a second transaction waits for those accounts. Returns outcome counts.
    """
    counts: Counter = Counter()
    events: list[tuple[Event, dict]] = []
    for payload in payloads:
        try:
            events.append((Event.from_payload(payload), payload))
        except EventError as exc:
            event_park(payload=payload, error=f"malformed: {exc}", attempts=1)
            counts["parked"] += 1
    by_id = {event.event_id: payload for event, payload in events}
    try:
        ready, skipped, reversible = _screen([event for event, _ in events])
    except Exception as exc:
        if isinstance(exc, OperationalError) and not _database_answers():
            raise
        logger.warning("a batch of %d events could not be screened; processing them one by one", len(events), exc_info=True)
        for event, payload in events:
            counts[_process_alone(event, payload)] += 1
        return counts
    counts += skipped
    skip_locked = connection.features.has_select_for_update_skip_locked
    while ready:
        try:
            done, applied = _process_locked(ready, skip_locked=skip_locked, reversible=reversible)
        except Exception as exc:
            if isinstance(exc, OperationalError) and not _database_answers():
                raise  # the database is unwell, not the events: the whole batch comes back later
            logger.warning("a batch of %d events failed; processing them one by one", len(ready), exc_info=True)
            break
        counts += applied
        ready = [item for item in ready if item[0].user_id not in done]
        if not skip_locked:
            break  # what is left has no account (deleted meanwhile): each alone says why
        skip_locked = False
        if ready and done and put_back is not None:
            # Waiting for the other batch's commit and then committing a transaction for a few
            # events would cost more than they do in a later batch, where their accounts are free.
            put_back([by_id[event.event_id] for event, _ in ready])
            counts["put_back"] += len(ready)
            ready = []
    for event, _config in ready:
        counts[_process_alone(event, by_id[event.event_id])] += 1
    return counts


_inbox = None


def _worker_inbox():
    global _inbox
    if _inbox is None:
        _inbox = worker_inbox()
    return _inbox


def inbox_drain() -> Counter:
    """Claim and process batches until the inbox is empty or the time budget is spent."""
    inbox = _worker_inbox()
    inbox.clear_wake()
    deadline = time.monotonic() + settings.JIFEN_DRAIN_BUDGET_S
    totals: Counter = Counter()
    woke_another = False
    while time.monotonic() < deadline:
        batch = inbox.claim(limit=settings.JIFEN_BATCH_SIZE)
        if batch is None:
            return totals
        if not woke_another and inbox.client.llen(inbox.key):
            # A backlog: wake one more drain, which does the same, so every worker process joins.
            inbox.wake()
            woke_another = True
        with log_context(batch_id=batch.id):
            totals += _batch_process(inbox, batch)
    inbox.wake()  # events are left: another drain task takes over, on any worker
    return totals


def _batch_process(inbox: RedisInbox, batch: Batch) -> Counter:
    """Process one claimed batch and drop it from the inbox (putting back what must wait); returns outcome counts."""
    later: list[dict] = []
    try:
        counts = events_process_batch(payloads=batch.payloads, put_back=later.extend)
    except OperationalError:
        raise  # the database is unwell: the batch stays claimed, and the sweep puts it back
    except Exception as exc:
        # A fault of the pipeline itself: left claimed, the batch would come back every sweep and
        # fail again for ever. Each of its events is parked instead, visible and retriable.
        logger.exception("inbox: a batch of %d events failed; parking them", len(batch.payloads))
        error = f"batch failed: {type(exc).__name__}: {exc}"
        for payload in batch.payloads:
            event_park(payload=payload, error=error, attempts=1)
        later, counts = [], Counter(parked=len(batch.payloads))
    inbox.finish(batch, put_back=later)
    if later:
        logger.info("inbox: %d events of users busy in another batch put back for a later batch", len(later))
    logger.info(
        "inbox: batch of %d events done: %s",
        len(batch.payloads),
        ", ".join(f"{outcome} {count}" for outcome, count in sorted(counts.items())),
    )
    counts.pop("put_back", None)  # counted when a later batch processes them
    return counts


def inbox_sweep() -> int:
    """Put back batches a killed worker left claimed; wake a drain if anything waits. Returns events put back."""
    if not uses_inbox():
        return 0
    inbox = _worker_inbox()
    restored = inbox.restore_stale(older_than_s=settings.JIFEN_BATCH_VISIBILITY_S)
    if restored:
        logger.warning("inbox: %d events of unfinished batches put back", restored)
    if inbox.client.llen(inbox.key):
        inbox.wake()
    return restored


def heartbeat_record(*, name: str = "worker") -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def failed_event_retry(*, failed: FailedEvent) -> bool:
    """Send a parked event through the pipeline again (it is skipped if it was processed meanwhile).

    Returns False, and sends nothing, when the payload was stored escaped or not at all (see
    `failed_event_sendable`): the escaped copy is not the event, and would be processed as another.
    """
    if not failed_event_sendable(failed=failed):
        return False
    try:
        handoff().send([failed.payload])
    except HandoffUnavailable:
        OutboxEvent.objects.get_or_create(event_id=failed.event_id, defaults={"payload": failed.payload})
    failed.status = FailedEvent.Status.RETRIED
    failed.save(update_fields=["status", "updated_at"])
    return True
