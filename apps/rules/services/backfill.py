"""Backfill: award what the completions a rule never decided (those before its activation) earned under it.

Which completions: those of the rule's task in its window whose recorded decisions do not name
the rule. A completion's row commits with its scoring, so one that the rule decided live is never
decided again here. While a rule's run is queued or running, workers leave the rule out
(`apps.rules.selectors.ActiveRules`), so completions recorded meanwhile stay undecided and the
run, reading on until a page comes back short, decides them too, in order. Once it is done,
`backfill_catch_up` decides the few a worker with a stale rules cache recorded in between (one
that sorts before a completion the rule already counted re-scores its user, as a worker would).

The rule is replayed over those completions in (occurred_at, id) order, exactly as the dry run
replays it, and each batch of decisions is written through the worker's own path
(`scoring_plan_write`: progress rows, counted completions, ledger entries keyed by completion
and rule) under the batch users' account locks, with the decisions appended to each completion
for "why no points?". Under the locks each batch reads its completions again: one reversed or
deleted meanwhile is left out, one decided meanwhile stands. What the database already holds
wins over the replay's memory (a rule active before `backfill_rule` ran): a place a live award
took, a business id or a streak period counted live, a period's count and awards, from which a
count rule's decision is made again. On a quiet system there is none of it, and the backfill
awards exactly what the dry run showed.

Exactly once: one run per rule may be queued, running or done (a unique constraint), and each
batch commits with the run's high-water mark under the run's row lock, so a run that resumes,
or a second process on the same run, never writes a completion twice.
"""

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.lifecycle import WorkflowForbidden
from apps.core.multirow import rows_update
from apps.ledger.services.announcements import notices_per_user
from apps.ledger.services.entries import EntryMeta, accounts_ensure, accounts_lock
from apps.rules.engine import STREAK, Completion, Decision, Reason, RuleSpec, evaluate, in_cooldown
from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.replay import Replay, Tally
from apps.rules.selectors.dry_run import Window, completions_query, replay_for, replay_spec, undecided_completions
from apps.rules.services.rescore import Cause, Rescore, completions_rescore
from apps.rules.services.scoring import (
    BatchState,
    ScoringItem,
    ScoringPlan,
    plan_keep,
    recipient_place_take,
    scoring_plan_write,
)
from apps.rules.services.workflow import score_rule_activate
from apps.tasks.models import UserTaskRecord

logger = logging.getLogger(__name__)

STALE_BATCH_S = 5.0  # the longest a worker's batch keeps the rules it read when it started
BACKFILL_BATCH = 500  # completions per transaction: the users' account locks are held this long


class BackfillRefused(Exception):
    """The rule cannot be backfilled now (not active, or a run is queued, running or done)."""


def rule_activated_at(rule: ScoreRule) -> datetime | None:
    """When the rule became active, from its history (None if it never did)."""
    first = rule.history.filter(status=ScoreRule.Status.ACTIVE).order_by("history_date").values_list("history_date", flat=True)
    return first.first()


def backfill_window(rule: ScoreRule) -> tuple[Window, datetime | None]:
    """(the completions' window, the activation time): what a backfill of `rule` reads."""
    return Window.of(rule, since=None), rule_activated_at(rule)


def backfill_request(*, rule: ScoreRule, actor: AbstractBaseUser | None = None) -> BackfillRun:
    """Queue the rule's backfill; raise BackfillRefused if it is not active or one is queued, running or done.

    A failed run before it is resumed: the new run starts after the last completion it wrote.
    A backfill posts entries as activating would have, so an operator (`actor`) needs the right
    to activate rules (WorkflowForbidden otherwise); `actor=None` is the system (the command).
    """
    if actor is not None and not actor.has_perm(ScoreRule.STATUS_PERMISSIONS[ScoreRule.Status.ACTIVE]):
        raise WorkflowForbidden(_("Only someone allowed to activate rules may start a backfill."))
    if rule.status != ScoreRule.Status.ACTIVE:
        raise BackfillRefused(_("Only an active rule can be backfilled; %(rule)s is %(status)s.") % _names(rule))
    window, activated = backfill_window(rule)
    failed = rule.backfills.filter(status=BackfillRun.Status.FAILED).exclude(last_completion_id=None).first()
    try:
        with transaction.atomic():
            return BackfillRun.objects.create(
                rule=rule,
                requested_by=actor if actor is not None and actor.is_authenticated else None,
                window_start=window.start,
                activated_at=activated,
                last_occurred_at=failed.last_occurred_at if failed else None,
                last_completion_id=failed.last_completion_id if failed else None,
            )
    except IntegrityError:
        taken = rule.backfills.exclude(status=BackfillRun.Status.FAILED).first()
        raise BackfillRefused(
            _("%(rule)s has a backfill already (run %(run)s, %(status)s): it awards once.")
            % {**_names(rule), "run": taken.pk if taken else "?", "status": taken.get_status_display() if taken else "?"}
        ) from None


def score_rule_activate_with_backfill(*, rule: ScoreRule, actor: AbstractBaseUser | None = None) -> BackfillRun:
    """Activate the rule and queue its backfill in one transaction; the run starts once it commits."""
    with transaction.atomic():
        score_rule_activate(rule=rule, actor=actor)
        run = backfill_request(rule=rule, actor=actor)
        # No worker evaluates the rule while its run is queued (a stale cache predates the
        # activation, a fresh one leaves the rule out). Started once the batches in flight at the
        # activation have committed, so the run's first pages see them.
        countdown = catch_up_delay_s()
        transaction.on_commit(lambda: backfill_run_send(run_id=run.pk, countdown_s=countdown))
    return run


def backfill_run_send(*, run_id: int, countdown_s: float = 0.0) -> bool:
    """Hand a queued run to the workers; False, logged, if the broker cannot take it now.

    Never waits on the broker's retries (it runs on an operator's request): a run that could not be
    sent stays queued, and `backfill_runs_resend` (beat) sends it again. Until it runs, workers leave
    its rule out, so it must not be lost.
    """
    from apps.rules.tasks import run_backfill  # tasks import services; the task is enqueued from here only

    try:
        run_backfill.apply_async((run_id,), countdown=countdown_s, retry=False)
    except Exception as exc:  # kombu's errors vary by transport; whatever they are, beat sends it again
        logger.warning("backfill run %s could not be sent to the workers (%s); beat sends it again", run_id, exc)
        return False
    return True


RESEND_AFTER_S = 60.0  # a queued run not started by then was lost on its way (or waits behind others)


def backfill_runs_resend(*, older_than_s: float = RESEND_AFTER_S) -> list[int]:
    """Send again the runs still queued `older_than_s` after they were requested (beat); return their ids.

    A run sent twice is harmless: the first delivery claims it, a second finds it running or done
    and changes nothing (`backfill_run_execute`).
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    waiting = list(
        BackfillRun.objects.filter(status=BackfillRun.Status.QUEUED, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [run_id for run_id in waiting if backfill_run_send(run_id=run_id)]


def _names(rule: ScoreRule) -> dict:
    return {"rule": rule.score_type, "status": rule.get_status_display()}


def _page(rule: ScoreRule, window: Window, after: tuple[datetime, int] | None) -> list:
    """The next BACKFILL_BATCH completions after `after`, as the dry run reads them (keyset pages: a batch per query)."""
    rows = completions_query(task_type=rule.task_type, window=window)
    if after is not None:
        rows = rows.filter(Q(occurred_at__gt=after[0]) | Q(occurred_at=after[0], id__gt=after[1]))
    return list(rows[:BACKFILL_BATCH])


def _reconciled(decision: Decision, plan: ScoringPlan, index: int, spec: RuleSpec, tz: ZoneInfo) -> Decision:
    """The replay's decision, corrected by what the database holds (only live activity makes them differ)."""
    if not decision.counted:
        return decision
    item, state = plan.items[index], plan.state
    row = state.rows.get((item.user_id, spec.id, decision.period_start))
    if spec.cooldown is not None and in_cooldown(spec.cooldown, item.occurred_at, state.progress(item, spec, tz)):
        value = (row.streak if spec.kind == STREAK else row.count) if row is not None else 0
        return dataclasses.replace(
            decision, reason=Reason.COOLDOWN, counted=False, points=0, progress=value, takes_recipient_place=False
        )
    if spec.kind == STREAK:
        if row is not None and row.streak > 0:
            return dataclasses.replace(
                decision, reason=Reason.PERIOD_ALREADY_COUNTED, counted=False, points=0, progress=row.streak
            )
    elif row is not None:
        # The period has a row (live completions, or this backfill's earlier ones): the count and
        # the awards add up with it, so the engine decides again from the row, as a worker would.
        decision = _engine_decision(item, spec, state, tz)
        if not decision.counted:
            return decision
    if decision.awarded:
        if spec.award_limit is not None and row is not None and row.awards >= spec.award_limit:
            return dataclasses.replace(decision, reason=Reason.LIMIT_REACHED, points=0, takes_recipient_place=False)
        return _place_taken(decision, item, spec, state)
    return decision


def _engine_decision(item: ScoringItem, spec: RuleSpec, state: BatchState, tz: ZoneInfo) -> Decision:
    """The engine's decision from the database's progress, as a worker makes it (recipient place not yet taken)."""
    return evaluate(spec, Completion(item.occurred_at, item.business_id), state.progress(item, spec, tz), tz)


def _place_taken(decision: Decision, item: ScoringItem, spec: RuleSpec, state: BatchState) -> Decision:
    """The decision once its capped place is claimed (the conditional UPDATE decides), or capped if none is left."""
    if not decision.awarded or not decision.takes_recipient_place:
        return decision
    if (item.user_id, spec.id) in state.recipients:
        return dataclasses.replace(decision, takes_recipient_place=False)
    if not recipient_place_take(rule_id=spec.id, user_id=item.user_id):
        return decision.capped()
    state.recipients.add((item.user_id, spec.id))
    return decision


class _Run:
    """A run's replay and figures while it executes (no replay: the catch-up pass, which decides from the database)."""

    def __init__(self, run: BackfillRun, replay: Replay | None, spec: RuleSpec | None = None):
        self.run, self.replay, self.tally = run, replay, Tally()
        self.spec = replay.spec if replay is not None else spec
        self.task_type = run.rule.task_type
        self.mark = (run.last_occurred_at, run.last_completion_id) if run.last_completion_id is not None else None

    def _decide(self, plan: ScoringPlan, index: int, tz: ZoneInfo) -> Decision:
        item, spec = plan.items[index], self.spec
        if self.replay is None:  # a worker's decision, late
            return _place_taken(_engine_decision(item, spec, plan.state, tz), item, spec, plan.state)
        decision = _reconciled(self.replay.decide(item.user_id, item.occurred_at, item.business_id), plan, index, spec, tz)
        self.replay.apply(item.user_id, item.occurred_at, item.business_id, decision)
        return decision

    def write_batch(self, rows: list) -> None:
        """Decide and write one batch in one transaction, under the run's row lock and the users' account locks."""
        spec, tz = self.spec, ZoneInfo(settings.TIME_ZONE)
        catch_up = self.replay is None
        accounts_ensure(user_ids=sorted({row[2] for row in rows}))
        with transaction.atomic():
            locked = BackfillRun.objects.select_for_update().get(pk=self.run.pk)
            mark = (locked.last_occurred_at, locked.last_completion_id) if locked.last_completion_id is not None else None
            if catch_up:
                if locked.status != BackfillRun.Status.DONE:
                    raise BackfillRefused(_("Backfill run %(run)s was moved on by another process.") % {"run": locked.pk})
            elif locked.status != BackfillRun.Status.RUNNING or mark != self.mark:
                raise BackfillRefused(_("Backfill run %(run)s was moved on by another process.") % {"run": locked.pk})
            accounts = accounts_lock(user_ids=sorted({row[2] for row in rows}))
            # Read again under the locks: a completion reversed (or deleted) since the page was read
            # is left out, as the dry run would leave it out (its reversal found nothing to undo).
            details = {
                pk: rest
                for pk, *rest in UserTaskRecord.objects.filter(
                    pk__in=[row[1] for row in rows], reversed_at__isnull=True
                ).values_list("pk", "event_id", "location", "country", "lang_type", "decisions")
            }
            # Completions the rule decided already (a worker saw it active, or the run itself) stand as decided.
            undecided = [
                row for row in rows if row[1] in details and not any(d.get("rule_id") == spec.id for d in details[row[1]][4])
            ]
            items = [
                ScoringItem(
                    user_id=user_id,
                    task_type=self.task_type,
                    event_id=details[pk][0],
                    occurred_at=occurred_at,
                    business_id=business_id,
                    meta=EntryMeta(*details[pk][1:4]),
                )
                for occurred_at, pk, user_id, business_id in undecided
            ]
            plan = ScoringPlan(items=items, decisions=[])
            plan.state = BatchState(wanted=[(item, [spec]) for item in items], tz=tz)
            ids = [row[1] for row in undecided]
            late: dict[int, tuple[ScoringItem, int]] = {}  # user id: the catch-up's earliest late completion, its id
            for index, item in enumerate(items):
                # The catch-up pass comes after live completions that happened later: one that sorts
                # before what the rule counted re-scores the user as a worker would (SPEC §6).
                if catch_up and (item.user_id in late or plan.state.is_late(item, spec, tz)):
                    late.setdefault(item.user_id, (item, ids[index]))
                    plan.decisions.append([])
                    continue
                decision = self._decide(plan, index, tz)
                plan_keep(plan, index, spec, decision)
                plan.decisions.append([decision])
                self.tally.add(item.user_id, decision)
            if items:
                with notices_per_user():  # a user's past completions read as one notification per batch
                    scoring_plan_write(plan=plan, completion_ids=ids, accounts=accounts)
                now = timezone.now()
                rows_update(
                    UserTaskRecord,
                    ("decisions", "updated_at"),
                    [
                        (pk, [*details[pk][4], decisions[0].as_record()], now)
                        for pk, decisions in zip(ids, plan.decisions, strict=True)
                        if decisions
                    ],
                )
            self.tally.completions += sum(1 for decisions in plan.decisions if not decisions)
            for user_id, (item, completion_id) in sorted(late.items()):
                done = completions_rescore(
                    account=accounts[user_id],
                    rule=locked.rule,
                    job=Rescore(user_id, spec.id, item.occurred_at, Cause.LATE, item.occurred_at, completion_id),
                )
                self.tally.awards += done.awarded - done.reversed
                self.tally.points += done.points
            if catch_up:
                _figures_add(locked, self.tally)
                self.tally = Tally()
            else:
                self.mark = (rows[-1][0], rows[-1][1])
                locked.last_occurred_at, locked.last_completion_id = self.mark
                self._figures(locked)
            locked.save()

    def _figures(self, run: BackfillRun) -> None:
        tally = self.tally
        run.completions, run.counted, run.awards, run.points = tally.completions, tally.counted, tally.awards, tally.points
        run.recipients, run.reasons = tally.recipients, dict(tally.reasons)


def _figures_add(run: BackfillRun, tally: Tally) -> None:
    """Add the catch-up pass's decisions to the run's figures (its recipients are the run's, plus any new)."""
    run.completions += tally.completions
    run.counted += tally.counted
    run.awards += tally.awards
    run.points += tally.points
    run.recipients += tally.recipients  # at most: a user awarded by both passes is counted twice
    for reason, count in tally.reasons.items():
        run.reasons[reason] = run.reasons.get(reason, 0) + count


def backfill_run_execute(*, run_id: int) -> BackfillRun:
    """Run a queued backfill to the end, a batch per transaction; return the run, done or failed.

    While the run is queued or running, workers leave the rule alone (`ActiveRules`), so the
    completions recorded meanwhile stay undecided by it, and the run, reading on (each page up to
    its now) until a page comes back short, decides them too, in (occurred_at, id) order. Once it is
    done, workers take the rule up again within JIFEN_RULES_REFRESH_S; `backfill_catch_up` then
    decides the few that a worker with a stale cache recorded in between.

    A run left `running` by a process that died is taken up again from its high-water mark (the
    replay goes over the completions before it again, in memory, to rebuild the users' progress).
    Raises BackfillRefused if the run is done or failed already.
    """
    claimed = BackfillRun.objects.filter(pk=run_id, status__in=BackfillRun.OPEN).update(
        status=BackfillRun.Status.RUNNING, started_at=timezone.now()
    )
    run = BackfillRun.objects.select_related("rule").get(pk=run_id)
    if not claimed:
        raise BackfillRefused(
            _("Backfill run %(run)s is %(status)s already.") % {"run": run.pk, "status": run.get_status_display()}
        )
    rule = run.rule
    executing = _Run(run, replay_for(rule, live_recipients=True))
    try:
        after = None
        while True:
            # Up to now, every page: live completions recorded since the run started are read too.
            rows = _page(rule, Window.of(rule, since=run.window_start), after)
            if not rows:
                break
            after = (rows[-1][0], rows[-1][1])
            fresh = [row for row in rows if executing.mark is None or (row[0], row[1]) > executing.mark]
            for occurred_at, _pk, user_id, business_id in rows[: len(rows) - len(fresh)]:
                executing.replay.step(user_id, occurred_at, business_id)  # written before: replayed only
            if fresh:
                executing.write_batch(fresh)
            if len(rows) < BACKFILL_BATCH:
                # Caught up with the present: under steady live traffic a page is never empty.
                # What is recorded from here on is the catch-up pass's.
                break
    except BackfillRefused:
        raise  # another process holds the run: it goes on, this one stops
    except Exception as exc:
        logger.exception("backfill run %s of rule %s failed", run.pk, rule.score_type)
        BackfillRun.objects.filter(pk=run.pk, status=BackfillRun.Status.RUNNING).update(
            status=BackfillRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=timezone.now()
        )
    else:
        BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    run.tally = executing.tally
    return run


def catch_up_delay_s() -> float:
    """How long after a run is done every worker evaluates its rule again: the rules cache's refresh and a batch in flight."""
    return settings.JIFEN_RULES_REFRESH_S + STALE_BATCH_S


def backfill_catch_up(*, run_id: int) -> int:
    """Decide the completions of a done run's rule still undecided by it; return how many.

    Call it `catch_up_delay_s()` after the run is done: those are the completions that workers
    whose rules cache still left the rule out recorded after the run's last page (or, late
    events, before its mark), each decided now as a worker would have, from the database's
    progress. Only completions recorded since the rule's first run was requested (less a batch)
    are read, their decisions in Python. Safe to run twice: a decided completion stays decided.
    """
    run = BackfillRun.objects.select_related("rule").get(pk=run_id)
    if run.status != BackfillRun.Status.DONE:
        raise BackfillRefused(
            _("Backfill run %(run)s is %(status)s already.") % {"run": run.pk, "status": run.get_status_display()}
        )
    rule = run.rule
    requested = rule.backfills.aggregate(first=Min("created_at"))["first"]
    rows = undecided_completions(
        rule=rule, window=Window.of(rule, since=run.window_start), recorded_since=requested - timedelta(seconds=STALE_BATCH_S)
    )
    passing = _Run(run, None, spec=replay_spec(rule))
    for start in range(0, len(rows), BACKFILL_BATCH):
        passing.write_batch(rows[start : start + BACKFILL_BATCH])
    if rows:
        logger.info("backfill run %s of rule %s: catch-up pass read %s completions", run.pk, rule.score_type, len(rows))
    return len(rows)


def score_rule_backfill(
    *, rule: ScoreRule, actor: AbstractBaseUser | None = None, wait: Callable[[float], None] = time.sleep
) -> BackfillRun:
    """Request and run the rule's backfill here and now (the command's path); see `backfill_request`.

    Once the run is done, waits for every worker to take the rule up again (`catch_up_delay_s`)
    and runs the catch-up pass.
    """
    run = backfill_request(rule=rule, actor=actor)
    run = backfill_run_execute(run_id=run.pk)
    if run.status == BackfillRun.Status.DONE:
        tally = run.tally
        wait(catch_up_delay_s())
        backfill_catch_up(run_id=run.pk)
        run.refresh_from_db()
        run.tally = tally
    return run
