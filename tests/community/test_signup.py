"""Signing up on the demo site leaves the new user signed in (issue 13, item 1)."""

import ast
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_a_valid_sign_up_creates_the_account_and_signs_it_in(client):
    response = client.post(
        reverse("signup"), {"username": "newbie", "password1": "a-long-Passphrase-9", "password2": "a-long-Passphrase-9"}
    )

    assert response.status_code == 302 and response["Location"] == reverse("home")
    user = get_user_model().objects.get(username="newbie")
    assert client.session["_auth_user_id"] == str(user.pk)
    home = client.get(reverse("home"))
    assert b"Log out" in home.content and b'id="checkin"' in home.content


def login_calls_without_a_backend(path: Path) -> list[str]:
    """`login(request, user)` calls in one module that do not name the backend."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in {"login", "auth_login"} and len(node.args) < 3 and not any(k.arg == "backend" for k in node.keywords):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_login_call_names_its_backend():
    """With several AUTHENTICATION_BACKENDS, login() without one raises unless authenticate() ran first.

    The project's own code logs users in only after creating them (never after authenticate()), so
    every call must name the backend; a new call without one fails here rather than as a 500.
    """
    modules = [path for folder in ("apps", "config") for path in (ROOT / folder).rglob("*.py")]
    assert [call for path in modules for call in login_calls_without_a_backend(path)] == []
