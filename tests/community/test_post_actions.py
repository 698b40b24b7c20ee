"""A post's actions on the community site: deleting asks first; no action's URL answers a GET with an error."""

import pytest
from django.urls import reverse

from apps.community.models import Comment, Post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def author(client):
    user = UserFactory(username="ann")
    client.force_login(user)
    return user


@pytest.fixture
def post(author):
    post = Post.objects.create(author=author, title="Hello there", body="first")
    Comment.objects.create(post=post, author=author, body="one")
    Comment.objects.create(post=post, author=author, body="two")
    return post


def test_the_post_page_links_to_a_question_not_a_delete_button(client, post):
    page = client.get(reverse("post-detail", args=[post.pk])).content.decode()
    url = reverse("post-delete", args=[post.pk])
    assert f'href="{url}"' in page and f'action="{url}"' not in page


def test_deleting_asks_first_and_says_what_goes(client, post):
    url = reverse("post-delete", args=[post.pk])
    asked = client.get(url)
    page = asked.content.decode()
    assert asked.status_code == 200 and "Hello there" in page
    assert "2 comments" in page and "taken back" in page and "cannot be undone" in page
    assert f'action="{url}"' in page and 'id="delete-cancel"' in page
    assert Post.objects.filter(pk=post.pk).exists()  # asking changes nothing; a reload asks again
    assert client.get(url).status_code == 200

    done = client.post(url)
    assert done.status_code == 302 and not Post.objects.filter(pk=post.pk).exists()


def test_someone_else_may_neither_see_the_question_nor_delete(client, post):
    client.force_login(UserFactory(username="bob"))
    url = reverse("post-delete", args=[post.pk])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert Post.objects.filter(pk=post.pk).exists()


@pytest.mark.parametrize("name", ["post-share", "comment-create"])
def test_a_post_only_action_opened_by_get_shows_the_post(client, post, name):
    response = client.get(reverse(name, args=[post.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("post-detail", args=[post.pk])
    assert post.shares.count() == 0 and post.comments.count() == 2
