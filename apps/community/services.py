"""Writes of the demo site. They know nothing of points: the middleware watches from outside."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.community.models import CheckIn, Comment, Post, Share


def checkin_create(*, user: AbstractBaseUser) -> CheckIn | None:
    """Sign the user in for today (local date); None if already signed in today."""
    try:
        with transaction.atomic():
            return CheckIn.objects.create(user=user, day=timezone.localdate())
    except IntegrityError:
        return None


def post_create(*, author: AbstractBaseUser, title: str, body: str) -> Post:
    return Post.objects.create(author=author, title=title, body=body)


def comment_create(*, post: Post, author: AbstractBaseUser, body: str) -> Comment:
    return Comment.objects.create(post=post, author=author, body=body)


def post_share(*, post: Post, user: AbstractBaseUser) -> Share:
    return Share.objects.create(post=post, user=user)


def post_delete(*, post: Post) -> None:
    post.delete()
