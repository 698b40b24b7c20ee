"""Configuration: the typed environment reader and production hardening (SPEC G10)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "kq7Zr1-pL0mX9vB3nT6yH2wJ5cF8dS4aG0eU7iO1rK3lM6qW9zX2vC5bN8mA1sD4fG7hJ0kL3",
    "ALLOWED_HOSTS": "points.example.com",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    clean["JIFEN_VAR_DIR"] = str(ROOT / "var" / "test" / "settings-check")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_database_checks_that_migrate_runs_pass_on_a_fresh_clones_sqlite():
    # `migrate` runs the checks against the database; SQLite once warned there (models.W040) about
    # the ledger's covering index, on every `make run`.
    result = manage("check", "--database", "default", "--fail-level", "WARNING", env={"DEBUG": "true"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = manage("check", env={"DEBUG": "false", "ALLOWED_HOSTS": "points.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_checkout_without_configuration_runs_manage_py_as_a_development_checkout():
    result = manage("check", env={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running as a development checkout (DEBUG=true)" in result.stderr


def test_a_bad_value_stops_start_up_naming_the_variable():
    result = manage("check", env={**PRODUCTION_ENV, "SECURE_HSTS_SECONDS": "a year"})
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS='a year' is not a whole number" in result.stderr


def test_a_guessable_health_token_stops_start_up():
    result = manage("check", env={**PRODUCTION_ENV, "JIFEN_HEALTH_TOKEN": "secret"})
    assert result.returncode != 0
    assert "JIFEN_HEALTH_TOKEN must be at least 16 characters" in result.stderr


class TestTypedReader:
    def test_bool(self, monkeypatch):
        monkeypatch.setenv("X_FLAG", "Yes")
        assert env_bool("X_FLAG") is True
        monkeypatch.setenv("X_FLAG", "off")
        assert env_bool("X_FLAG", True) is False
        monkeypatch.setenv("X_FLAG", "maybe")
        with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
            env_bool("X_FLAG")

    def test_int_with_minimum(self, monkeypatch):
        monkeypatch.setenv("X_COUNT", "-3")
        with pytest.raises(ImproperlyConfigured, match="below its minimum"):
            env_int("X_COUNT", 1, minimum=0)
        monkeypatch.delenv("X_COUNT")
        assert env_int("X_COUNT", 7) == 7

    def test_list(self, monkeypatch):
        monkeypatch.setenv("X_HOSTS", "a.example, b.example,,")
        assert env_list("X_HOSTS") == ["a.example", "b.example"]
