"""Settings for the test suite: the project's settings, read with test defaults.

Only defaults are set: what the environment gives (DATABASE_URL, CELERY_BROKER_URL, ...) wins,
which is how CI runs the same suite on PostgreSQL + Redis and on the embedded defaults. Worker
processes started by the tests inherit this environment.
"""

import os
import uuid
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-any-deployment-0123456789abcdef")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("JIFEN_VAR_DIR", str(_ROOT / "var" / "test"))
os.environ.setdefault("JIFEN_ROUTES_REFRESH_S", "0")
os.environ.setdefault("JIFEN_RULES_REFRESH_S", "0")
# A queue of this run's own, so a shared Redis never mixes two runs' messages.
os.environ.setdefault("JIFEN_QUEUE", f"jifen-test-{uuid.uuid4().hex[:12]}")
# Prometheus's multiprocess files of this run's processes (the test process and the workers it
# starts), apart from other runs'; conftest.py removes the directory when the run ends.
os.environ.setdefault("JIFEN_METRICS_DIR", str(Path(os.environ["JIFEN_VAR_DIR"]) / f"metrics-{uuid.uuid4().hex[:12]}"))

from config.settings import *  # noqa: E402, F403

# Templates use {% static %}; the manifest storage would need collectstatic before every run.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
