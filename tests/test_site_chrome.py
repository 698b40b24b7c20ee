"""The pages' surroundings (issue 14): the lockout page in the look of the login it came from, and the icon."""

import pytest
from django.templatetags.static import static
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def lock_out(client, login_url: str, username: str):
    UserFactory(username=username)
    for _ in range(10):
        response = client.post(login_url, {"username": username, "password": "wrong"}, REMOTE_ADDR="10.9.8.7")
        if response.status_code == 429:
            return response.content.decode()
    pytest.fail(f"{username} was not locked out at {login_url}")


def test_a_lockout_at_the_sites_login_shows_the_sites_page_with_a_way_home(client):
    page = lock_out(client, reverse("login"), "mallory")
    assert "Too many failed logins" in page and "Try again in 15 minutes." in page
    assert 'id="header"' not in page  # not the admin's
    assert 'class="bar"' in page and f'href="{reverse("home")}"' in page
    assert "Back to the home page" in page


def test_a_lockout_at_the_admins_login_shows_the_admins_page_with_a_way_back_to_its_login(client):
    page = lock_out(client, reverse("admin:login"), "trudy")
    assert "Too many failed logins" in page
    assert 'id="header"' in page and "Jifen points console" in page
    assert f'href="{reverse("admin:login")}"' in page


def test_every_page_names_the_icon_and_favicon_ico_finds_it(client, admin_client):
    icon = static("favicon.svg")
    assert f'href="{icon}"' in client.get(reverse("home")).content.decode()
    assert f'href="{icon}"' in admin_client.get(reverse("admin:index")).content.decode()
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == icon
