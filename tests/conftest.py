import contextlib
import os

import pytest
from django.db import connection

from apps.notifications.services.announce import subscriptions
from apps.rules.selectors.rules import active_rules_clear
from apps.tracking.routing import route_table_clear

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def operator(client, django_user_model):
    """A superuser signed in to the admin through the test client."""
    user = django_user_model.objects.create_user("op", password="demo12345", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture(autouse=True)
def _fresh_caches():
    route_table_clear()
    active_rules_clear()
    subscriptions.clear()
    yield
    route_table_clear()
    active_rules_clear()
    subscriptions.clear()


def pytest_collection_modifyitems(config, items):
    """Skip tests whose service is not configured here, saying which variable would enable them."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    database = os.environ.get("DATABASE_URL", "")
    for item in items:
        if "postgres" in item.keywords and not database.startswith(("postgres://", "postgresql://")):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if "redis" in item.keywords and not broker.startswith("redis://"):
            item.add_marker(pytest.mark.skip(reason="needs Redis: set CELERY_BROKER_URL=redis://..."))


def database_url_for_workers() -> str:
    """The URL of the database the tests are using, for worker processes to share it."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(autouse=True)
def _fresh_handoff():
    from apps.tracking.handoff import handoff_reset

    handoff_reset()
    yield
    handoff_reset()


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's metrics files and Redis keys (its metrics directory and queue name are unique to the run)."""
    from django.conf import settings

    from config.prometheus import empty_metrics_dir

    empty_metrics_dir(settings.JIFEN_METRICS_DIR)
    with contextlib.suppress(OSError):
        settings.JIFEN_METRICS_DIR.rmdir()  # gone when empty; one given by the environment may hold more
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        return
    import redis

    queue = os.environ["JIFEN_QUEUE"]
    try:
        client = redis.Redis.from_url(broker, socket_connect_timeout=1, socket_timeout=2)
        keys = list(client.scan_iter(match=f"{queue}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
