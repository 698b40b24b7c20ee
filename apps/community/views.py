"""The demo community site: sign-in, posts, comments, shares, the user's points page, the shop, notifications and profiles."""

import uuid
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.community import services
from apps.community.forms import CommentForm, PostForm, SignupForm
from apps.community.models import Post
from apps.ledger.selectors.expiring import expiring_of
from apps.ledger.selectors.ledger import balance_of, recent_entries
from apps.ledger.selectors.levels import standings_of
from apps.notifications.selectors import notifications_page
from apps.notifications.services.reading import notifications_mark_read
from apps.notifications.texts import notification_texts
from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.selectors import redemptions_of, shop_offers
from apps.rewards.services.redemptions import redemption_create
from apps.rules.selectors.badges import badges_of
from apps.rules.selectors.rules import current_progress_for

SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"
# My points lists the next expiry dates, at most this many.
EXPIRING_SHOWN = 12
NOTIFICATIONS_PER_PAGE = 20


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    posts = Post.objects.select_related("author")[:30]
    return render(request, "community/home.html", {"posts": posts, "form": PostForm()})


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Two backends are configured (django-axes, then ModelBackend), so login() must be told
        # which one vouches for a user who was never authenticate()d: the one that reloads them.
        login(request, user, backend=SESSION_BACKEND)
        messages.success(request, _("Welcome, %(name)s!") % {"name": user.username})
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@require_POST
def checkin(request: HttpRequest) -> JsonResponse:
    """签到. Answers {"code": 0} on the day's first sign-in, {"code": 1} after that."""
    if not request.user.is_authenticated:
        return JsonResponse({"code": 401, "message": _("Please log in first.")}, status=401)
    done = services.checkin_create(user=request.user)
    if done is None:
        return JsonResponse({"code": 1, "message": _("You have already signed in today.")})
    return JsonResponse({"code": 0, "message": _("Signed in for %(day)s.") % {"day": done.day}, "day": str(done.day)})


@login_required
@require_POST
def post_create(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST)
    if not form.is_valid():
        posts = Post.objects.select_related("author")[:30]
        return render(request, "community/home.html", {"posts": posts, "form": form}, status=400)
    post = services.post_create(author=request.user, **form.cleaned_data)
    return redirect("post-detail", post_id=post.pk)


def post_only_else_to_the_post(view):
    """A post's POST-only action opened with GET (a reload, a bookmark, a pasted link) shows the post, not an error."""

    @wraps(view)
    def wrapped(request: HttpRequest, post_id: int) -> HttpResponse:
        if request.method != "POST":
            return redirect("post-detail", post_id=post_id)
        return view(request, post_id)

    return wrapped


@require_GET
def post_detail(request: HttpRequest, post_id: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.select_related("author"), pk=post_id)
    return render(request, "community/post_detail.html", _detail_context(post, CommentForm()))


def _detail_context(post: Post, form: CommentForm) -> dict:
    return {
        "post": post,
        "comments": post.comments.select_related("author"),
        "share_count": post.shares.count(),
        "form": form,
    }


@login_required
@post_only_else_to_the_post
def comment_create(request: HttpRequest, post_id: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=post_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return render(request, "community/post_detail.html", _detail_context(post, form), status=400)
    services.comment_create(post=post, author=request.user, body=form.cleaned_data["body"])
    return redirect("post-detail", post_id=post.pk)


@login_required
@post_only_else_to_the_post
def post_share(request: HttpRequest, post_id: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=post_id)
    services.post_share(post=post, user=request.user)
    messages.success(request, _("Thanks for sharing!"))
    return redirect("post-detail", post_id=post.pk)


@login_required
def post_delete(request: HttpRequest, post_id: int) -> HttpResponse:
    """GET: asks, saying what deleting takes with it (a reload or a bookmark asks again); POST: deletes."""
    post = get_object_or_404(Post, pk=post_id)
    if post.author_id != request.user.pk:
        return HttpResponseForbidden(_("You can only delete your own posts."))
    if request.method != "POST":
        return render(request, "community/post_delete.html", {"post": post, "comment_count": post.comments.count()})
    services.post_delete(post=post)
    messages.success(request, _("Post deleted."))
    return redirect("home")


@login_required
@require_GET
def my_points(request: HttpRequest) -> HttpResponse:
    standings = standings_of(user_id=request.user.pk)
    context = {
        "balance": balance_of(user_id=request.user.pk),
        # Each type the user holds (the default one always): balance, level, progress to the next.
        "standings": [s for s in standings if s.held or s.point_type.is_default],
        "several_types": sum(1 for s in standings if s.held) > 1,
        "progress": current_progress_for(user_id=request.user.pk),
        "entries": recent_entries(user_id=request.user.pk, limit=20),
    }
    # What expires when, soonest first (community/_expiring.html).
    context["expiring"] = expiring_of(user_id=request.user.pk, limit=EXPIRING_SHOWN)
    context["badges"] = badges_of(user_id=request.user.pk)
    return render(request, "community/my_points.html", context)


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first, a page at a time (?before=<id>).

    Seeing them is reading them: the unread ones of the page shown are marked read as it is
    served, and highlighted as new in it; the header's count, drawn after, counts the rest.
    """
    before = request.GET.get("before", "")
    page = notifications_page(
        user_id=request.user.pk, before=int(before) if before.isdigit() else None, limit=NOTIFICATIONS_PER_PAGE
    )
    items = notification_texts(page.notifications)
    unseen = [n.pk for n in page.notifications if n.read_at is None]
    if unseen:
        notifications_mark_read(user=request.user, ids=unseen)
    context = {"items": items, "new": set(unseen), "next_before": page.next_before, "paged": bool(before)}
    return render(request, "community/notifications.html", context)


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """POST: mark every notification of the user read (those on later pages too), then back to the list."""
    marked = notifications_mark_read(user=request.user, everything=True)
    if marked:
        messages.success(request, _("All notifications marked read."))
    return redirect("notifications")


@require_GET
def profile(request: HttpRequest, username: str) -> HttpResponse:
    """A user's public page: their level in each point type they hold, and their badges."""
    subject = get_object_or_404(get_user_model(), username=username, is_active=True)
    standings = [s for s in standings_of(user_id=subject.pk) if s.held or s.point_type.is_default]
    context = {"subject": subject, "standings": standings, "badges": badges_of(user_id=subject.pk)}
    return render(request, "community/profile.html", context)


SHOP_REDEMPTIONS_SHOWN = 20


@require_GET
def shop(request: HttpRequest) -> HttpResponse:
    """The rewards shop (兑换): what is on offer and whether the user may redeem it, their points and redemptions.

    Each item's form carries a new client key: sent twice (a double click, a reload of the POST),
    it redeems once.
    """
    user_id = request.user.pk if request.user.is_authenticated else None
    context = {"offers": [(offer, uuid.uuid4()) for offer in shop_offers(user_id=user_id)]}
    if user_id is not None:
        context["standings"] = standings_of(user_id=user_id)
        context["redemptions"] = redemptions_of(user_id=user_id, limit=SHOP_REDEMPTIONS_SHOWN).redemptions
    return render(request, "community/shop.html", context)


def shop_redeem(request: HttpRequest) -> HttpResponse:
    """POST: redeem one item (its code and the form's client key), then back to the shop with what happened."""
    if request.method != "POST":
        return redirect("shop")  # a reload, a bookmark or a pasted link: the shop, not an error
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("shop"))
    try:
        done = redemption_create(
            user=request.user, item_code=request.POST.get("item", ""), client_key=request.POST.get("key", "")
        )
    except RedemptionRefused as refused:
        messages.error(request, refused.message)
        return redirect("shop")
    redemption = done.redemption
    values = {
        "item": redemption.item.name,
        "cost": redemption.cost,
        "type": redemption.point_type,
        "balance": done.balance,
    }
    if done.created:
        messages.success(
            request,
            _("You redeemed %(item)s for %(cost)s %(type)s; %(balance)s %(type)s left. It is on its way: see My redemptions.")
            % values,
        )
    else:
        # A double submit: whichever answer the browser shows last, the user learns it is redeemed.
        messages.info(
            request,
            _("You redeemed %(item)s (this form was sent twice: nothing more was spent); %(balance)s %(type)s left.") % values,
        )
    return redirect("shop")
