"""The site's notifications: the header's count, the list page that marks what it shows read, and "mark all read"."""

import re

import pytest
from django.test import Client

from apps.notifications.models import Notification
from tests.notifications.conftest import notify

pytestmark = pytest.mark.django_db


def header_count(html: str) -> str | None:
    """The header's count as drawn, or None when it is hidden."""
    found = re.search(r'<span class="count" id="notification-count"[^>]*?( hidden)?>(\d+)</span>', html, re.S)
    assert found, "the header has no count"
    return None if found.group(1) else found.group(2)


def test_the_header_shows_the_unread_count_on_every_page(client, alice):
    client.force_login(alice)
    assert header_count(client.get("/").content.decode()) is None
    for _ in range(3):
        notify(alice)
    for url in ("/", "/me/points/", "/shop/", "/leaderboard/"):
        assert header_count(client.get(url).content.decode()) == "3", url


def test_signed_out_there_is_no_count_and_the_list_asks_to_log_in(client, alice):
    notify(alice)
    assert 'id="notification-count"' not in client.get("/").content.decode()
    response = client.get("/me/notifications/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_seeing_the_list_marks_it_read_and_shows_them_as_new_once(client, alice, bob):
    client.force_login(alice)
    first, second = notify(alice), notify(alice)
    notify(bob)
    page = client.get("/me/notifications/").content.decode()
    assert page.index(f'id="notification-{second.pk}"') < page.index(f'id="notification-{first.pk}"')  # newest first
    assert page.count('class="notification new"') == 2 and "+5 coins for sign-in-daily" in page
    assert header_count(page) is None  # the header is drawn after the page read them
    assert not Notification.objects.filter(user=alice, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=bob, read_at__isnull=True).count() == 1
    again = client.get("/me/notifications/").content.decode()
    assert 'class="notification new"' not in again and f'id="notification-{second.pk}"' in again


def test_pages_of_twenty_each_read_as_seen(client, alice):
    client.force_login(alice)
    made = [notify(alice) for _ in range(25)]
    page = client.get("/me/notifications/").content.decode()
    assert page.count('<li class="notification') == 20 and header_count(page) == "5"
    older = re.search(r'href="\?before=(\d+)" rel="next"', page).group(1)
    assert int(older) == made[5].pk
    rest = client.get(f"/me/notifications/?before={older}").content.decode()
    assert rest.count('<li class="notification new"') == 5 and header_count(rest) is None
    assert 'rel="next"' not in rest and 'rel="first"' in rest


def test_mark_all_read(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/me/points/")
    for _ in range(25):
        notify(alice)
    token = client.cookies["csrftoken"].value
    assert client.post("/me/notifications/read/").status_code == 403  # the form's token is needed
    response = client.post("/me/notifications/read/", {"csrfmiddlewaretoken": token}, follow=True)
    assert "All notifications marked read." in response.content.decode()
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_the_count_script_is_served_and_included(client, alice):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'src="/static/js/notifications.js"' in page
    assert 'data-url="/api/me/notifications?limit=0"' in page
