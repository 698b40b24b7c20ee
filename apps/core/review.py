"""Review of a draft before it goes live (SPEC §7 roles): submit, then activate or send back.

An editor submits a draft for review; it then waits in the approvers' review queue. An approver
either activates it (the model's own workflow step) or sends it back with a comment, which the
editor reads on the draft's page; the editor may change it and submit it again. The review fields
are never edited in a form: only these two services write them, under the row lock, each with its
own line in history. A draft in review can still be edited: the approver judges it as it is when
they act, and its history shows every change made after it was submitted.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.lifecycle import Actor, WorkflowForbidden

COMMENT_MAX = 2000


class ReviewState(models.TextChoices):
    NONE = "", gettext_lazy("not submitted")
    SUBMITTED = "submitted", gettext_lazy("waiting for review")
    SENT_BACK = "sent_back", gettext_lazy("sent back")


class ReviewableModel(models.Model):
    """The review fields of a draft: where it stands, who moved it last and when, and the approver's comment."""

    review_state = models.CharField(
        gettext_lazy("review"), max_length=16, choices=ReviewState.choices, default=ReviewState.NONE, blank=True, editable=False
    )
    review_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=gettext_lazy("review step by"),
    )
    review_at = models.DateTimeField(gettext_lazy("review step at"), null=True, blank=True, editable=False)
    review_comment = models.TextField(gettext_lazy("review comment"), blank=True, editable=False)

    REVIEW_FIELDS = ("review_state", "review_by", "review_at", "review_comment")

    class Meta:
        abstract = True

    @property
    def in_review(self) -> bool:
        return self.status == self.Status.EDITING and self.review_state == ReviewState.SUBMITTED


def _change_permission(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.change_{model._meta.model_name}"


def _approve_permission(model: type[models.Model]) -> str:
    """The permission that takes a draft live: the one that may also send it back."""
    return model.STATUS_PERMISSIONS[model.STATUS_ORDER[1]]


def _review_step(instance, *, state: str, comment: str, actor: Actor, allowed_from: tuple[str, ...], reason: str):
    model = type(instance)
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=instance.pk)
        if locked.status != model.Status.EDITING:
            raise ValidationError(
                _("%(object)s is %(status)s: only a draft is reviewed.")
                % {"object": locked, "status": locked.get_status_display()}
            )
        if locked.review_state not in allowed_from:
            raise ValidationError(
                _("%(object)s is %(review)s already.") % {"object": locked, "review": locked.get_review_state_display()}
            )
        locked.review_state = state
        locked.review_by = actor
        locked.review_at = timezone.now()
        locked.review_comment = comment
        locked._history_user = actor
        locked._change_reason = reason
        locked.save(update_fields=[*model.REVIEW_FIELDS, "updated_at"])
    instance.refresh_from_db()
    return instance


def review_submit(instance, *, actor: Actor):
    """A draft goes into the approvers' queue. Needs the right to change the model (rule editors have it)."""
    if actor is not None and not actor.has_perm(_change_permission(type(instance))):
        message = _("You may not submit %(object)s for review; someone allowed to edit it must.")
        raise WorkflowForbidden(message % {"object": instance})
    return _review_step(
        instance,
        state=ReviewState.SUBMITTED,
        comment="",
        actor=actor,
        allowed_from=(ReviewState.NONE, ReviewState.SENT_BACK),
        reason="submitted for review",
    )


def review_send_back(instance, *, actor: Actor, comment: str):
    """A draft in review goes back to its editor with the approver's comment (required)."""
    if actor is not None and not actor.has_perm(_approve_permission(type(instance))):
        message = _("You may not send %(object)s back; someone allowed to activate it must.")
        raise WorkflowForbidden(message % {"object": instance})
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError(_("Say what should change: the comment is what the editor reads."))
    if len(comment) > COMMENT_MAX:
        raise ValidationError(_("The comment is too long (at most %(max)d characters).") % {"max": COMMENT_MAX})
    return _review_step(
        instance,
        state=ReviewState.SENT_BACK,
        comment=comment,
        actor=actor,
        allowed_from=(ReviewState.SUBMITTED,),
        reason="sent back",
    )
