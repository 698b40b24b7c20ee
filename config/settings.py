"""Django settings for Jifen.

Everything that differs between a laptop and production is read from the environment through
`config.env`. The defaults are the embedded ones (SQLite and Celery's filesystem transport under
`var/`), so a fresh clone runs with no server; `DATABASE_URL` and `CELERY_BROKER_URL` switch to
PostgreSQL and Redis. With DEBUG off the secure settings are on unless a variable says otherwise.
"""

import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("JIFEN_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Prometheus metrics (docs/production.md, "Metrics"): every process of this host (web processes,
# Celery's pool processes) writes its counters and histograms to files in this directory, and
# /metrics sums them (prometheus_client's multiprocess mode). prometheus_client reads
# PROMETHEUS_MULTIPROC_DIR once, when it is first imported, so it is set here, before any app,
# middleware or database backend imports it; a process that imported it earlier would keep its
# figures to itself, which is refused rather than left to be found missing from the graphs.
JIFEN_METRICS_DIR = Path(env_str("JIFEN_METRICS_DIR") or str(VAR_DIR / "metrics")).resolve()
if "prometheus_client" in sys.modules and os.environ.get("PROMETHEUS_MULTIPROC_DIR") != str(JIFEN_METRICS_DIR):
    raise ImproperlyConfigured("prometheus_client was imported before config.settings set PROMETHEUS_MULTIPROC_DIR")
JIFEN_METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(JIFEN_METRICS_DIR)

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-0123456789"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # The admin site with the operator's dashboard on its index (config/admin.py).
    "config.apps.JifenAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_results",
    "django_celery_beat",
    "import_export",
    "simple_history",
    "axes",
    # The JSON API (config/api.py). Installed as an app so that its docs page takes Swagger UI from
    # the package's static files rather than from a CDN.
    "ninja",
    # Request and database metrics on /metrics (the middlewares and database backends below).
    "django_prometheus",
    "apps.core",
    "apps.tasks",
    "apps.rules",
    "apps.ledger",
    "apps.tracking",
    "apps.rewards",
    "apps.notifications",
    "apps.community",
]

MIDDLEWARE = [
    # First, so that it times the whole stack: responses by status and view, and their latency, on
    # /metrics (django-prometheus's metrics, two of its twelve: config/request_metrics.py says why).
    "config.request_metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Turns a login refused by django-axes into the lock-out page; it only reads a flag that the
    # login attempt set on the request, so it need not be last (the tracking middleware must be).
    "axes.middleware.AxesMiddleware",
    # Last, so that it sees the response the view returned and the user the view may have logged in.
    "apps.tracking.middleware.TrackingMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'jifen.sqlite3'}")
try:
    _default_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE_S", 60, minimum=0))
except Exception as exc:  # dj-database-url raises several types; all mean "bad URL"
    raise ImproperlyConfigured(f"DATABASE_URL could not be read: {exc}") from None

if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write to one file: WAL lets readers go on while one writes,
    # IMMEDIATE takes the write lock when a transaction starts (so two writers queue instead of
    # failing on lock upgrade), and the timeout is how long a writer waits for its turn.
    _default_db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    _default_db["CONN_MAX_AGE"] = 0
    # Tests share the database with worker processes, so it must be a file, not memory.
    _default_db["TEST"] = {"NAME": str(VAR_DIR / "test-jifen.sqlite3")}
    # SQLite has no covering indexes: the ledger's rule-figures index (ScoreRecord, key rule and
    # created_at, INCLUDE kind and trade_amount) is built there on its key columns alone, which still
    # serves the rule's figures and filter, and PostgreSQL builds it whole. Django's models.W040 says
    # exactly that on every command (`migrate` included); it is silenced for SQLite only, where it is
    # expected, so that a real warning is not lost among it.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    _default_db["CONN_HEALTH_CHECKS"] = True

# django-prometheus's wrappers of the same backends count connections, queries and errors and time
# each query for /metrics; they subclass Django's, so `connection.vendor` is unchanged.
_default_db["ENGINE"] = _default_db["ENGINE"].replace("django.db.backends.", "django_prometheus.db.backends.", 1)
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n -----------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes counts failed logins (admin and site) per username and client address; past the
# limit that pair is refused, even with the right password, until the lock-out ends.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("JIFEN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("JIFEN_LOGIN_LOCKOUT_MIN", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "login_locked_out.html"
AXES_COOLOFF_MESSAGE = format_lazy(
    _("Too many failed logins: this account is locked for {minutes} minutes from your address. Try again later."),
    minutes=int(AXES_COOLOFF_TIME.total_seconds() // 60),
)
AXES_VERBOSE = False
# The same client address as the tracking middleware uses (X-Forwarded-For only behind a proxy that sets it).
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if env_bool("JIFEN_TRUST_X_FORWARDED_FOR", False) else ("REMOTE_ADDR",)
)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads (the shop items' images). With DEBUG the site serves them itself; in production the web
# server (or a storage service) serves MEDIA_ROOT at MEDIA_URL.
MEDIA_ROOT = Path(env_str("JIFEN_MEDIA_DIR", str(VAR_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security: on whenever DEBUG is off; each can be turned off explicitly ------------------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    # The proxy terminates TLS and says so in this header; only trust it behind such a proxy.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery ---------------------------------------------------------------------------------

_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message a worker took but did not acknowledge comes back after this long; it must be
        # longer than any task can run, or a slow task would be delivered twice.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600, minimum=60),
        "socket_connect_timeout": env_float("REDIS_CONNECT_TIMEOUT_S", 0.25, minimum=0.01),
        "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT_S", 0.5, minimum=0.01),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Jifen ----------------------------------------------------------------------------------

# Request header that carries the client's country (e.g. set by a CDN or GeoIP proxy).
JIFEN_COUNTRY_HEADER = env_str("JIFEN_COUNTRY_HEADER", "HTTP_CF_IPCOUNTRY")
# Take the client address from X-Forwarded-For (only behind a proxy that sets it).
JIFEN_TRUST_X_FORWARDED_FOR = env_bool("JIFEN_TRUST_X_FORWARDED_FOR", False)
# The web process's hand-off to Redis: its timeout (connect and reply), and, once a hand-off failed
# and the circuit breaker opened, how often its background thread probes the broker (events go to
# the outbox until a probe succeeds; requests never wait on a probe).
JIFEN_HANDOFF_TIMEOUT_S = env_float("JIFEN_HANDOFF_TIMEOUT_S", 0.1, minimum=0.001)
JIFEN_BREAKER_OPEN_S = env_float("JIFEN_BREAKER_OPEN_S", 5.0, minimum=0.0)
# Workers: events per batch (one transaction), how long one drain task keeps draining, how long a
# claimed batch may stay unfinished before the sweeper puts it back (longer than any batch takes),
# and how many tries a failing event gets before it is parked for an operator.
JIFEN_BATCH_SIZE = env_int("JIFEN_BATCH_SIZE", 100, minimum=1)
JIFEN_DRAIN_BUDGET_S = env_float("JIFEN_DRAIN_BUDGET_S", 10.0, minimum=0.1)
JIFEN_BATCH_VISIBILITY_S = env_float("JIFEN_BATCH_VISIBILITY_S", 300.0, minimum=1.0)
JIFEN_MAX_ATTEMPTS = env_int("JIFEN_MAX_ATTEMPTS", 3, minimum=1)
# A pending wake-up expires after this long, so a lost one cannot stall the inbox.
JIFEN_WAKE_TTL_MS = env_int("JIFEN_WAKE_TTL_MS", 5000, minimum=100)
# /healthz turns 503 when the oldest unprocessed event or the last worker heartbeat is older than this.
JIFEN_HEALTH_MAX_EVENT_AGE_S = env_float("JIFEN_HEALTH_MAX_EVENT_AGE_S", 300.0, minimum=1.0)
JIFEN_HEALTH_MAX_HEARTBEAT_AGE_S = env_float("JIFEN_HEALTH_MAX_HEARTBEAT_AGE_S", 60.0, minimum=1.0)
# /healthz shows its checks' values (error text with host names, ports and users) to staff and to
# callers that send this token in the X-Jifen-Health-Token header; everyone else gets names only.
JIFEN_HEALTH_TOKEN = env_str("JIFEN_HEALTH_TOKEN")
if JIFEN_HEALTH_TOKEN and len(JIFEN_HEALTH_TOKEN) < 16:
    raise ImproperlyConfigured("JIFEN_HEALTH_TOKEN must be at least 16 characters (or unset)")
# /metrics, and /healthz's checks' values, for monitoring: staff, a caller with JIFEN_HEALTH_TOKEN (in
# X-Jifen-Health-Token, or as `Authorization: Bearer`, which Prometheus sends), or a caller from one
# of these networks (CIDR). Loopback by default only with DEBUG: behind a proxy on the same host
# every request comes from loopback (unless JIFEN_TRUST_X_FORWARDED_FOR).
JIFEN_MONITORING_NETWORKS = env_list("JIFEN_MONITORING_NETWORKS", ["127.0.0.0/8", "::1/128"] if DEBUG else [])
for _network in JIFEN_MONITORING_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"JIFEN_MONITORING_NETWORKS: {_network!r} is not a network (e.g. 10.0.0.0/8)") from None
# A worker host without a web process serves its processes' metrics on this port (unset: not served).
JIFEN_WORKER_METRICS_PORT = env_int("JIFEN_WORKER_METRICS_PORT", 0, minimum=0)
# django-prometheus's migrations gauge would query the migration table in every process at start-up.
PROMETHEUS_EXPORT_MIGRATIONS = False
# How often a worker checks whether the active score rules changed.
JIFEN_RULES_REFRESH_S = env_float("JIFEN_RULES_REFRESH_S", 0.5, minimum=0.0)
# The rule admin's dry run replays at most this many completions inside the web request; a bigger
# window goes to a worker, and the page shows "running" and refreshes itself until it is done.
JIFEN_DRY_RUN_INLINE_MAX = env_int("JIFEN_DRY_RUN_INLINE_MAX", 100_000, minimum=0)
# How often a process checks whether the TaskConfig route table changed.
JIFEN_ROUTES_REFRESH_S = env_float("JIFEN_ROUTES_REFRESH_S", 1.0, minimum=0.0)
# Adjustments (SPEC §5): one moving at most this many points, credit or debit, is posted as soon as
# an operator requests it; a bigger one waits until a second operator approves it.
JIFEN_ADJUSTMENT_APPROVAL_ABOVE = env_int("JIFEN_ADJUSTMENT_APPROVAL_ABOVE", 1000, minimum=0)

# The events API for other systems (POST /api/events): how far a request's signed timestamp may be
# from the server's clock, either way (and so how long a signature is remembered against replay),
# the largest body read, and the most events in one batch.
JIFEN_API_SIGNATURE_MAX_AGE_S = env_int("JIFEN_API_SIGNATURE_MAX_AGE_S", 300, minimum=1)
JIFEN_API_MAX_BODY_BYTES = env_int("JIFEN_API_MAX_BODY_BYTES", 1_048_576, minimum=1024)
# Django refuses a bigger body than this before any view runs; never below the API's own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, JIFEN_API_MAX_BODY_BYTES)
JIFEN_API_MAX_EVENTS = env_int("JIFEN_API_MAX_EVENTS", 1000, minimum=1)
# How far in the future an event's time may be (another system's clock running ahead of ours), for
# POST /api/events and ingest_events alike; later is refused (SPEC §9, G8).
JIFEN_EVENT_CLOCK_SKEW_S = env_int("JIFEN_EVENT_CLOCK_SKEW_S", 300, minimum=0)
# Entries per page of GET /api/me/ledger, at most.
JIFEN_API_LEDGER_PAGE_MAX = env_int("JIFEN_API_LEDGER_PAGE_MAX", 100, minimum=1)

# Holds by other systems (POST /api/holds): how long a hold lasts when the request names no
# expires_in_s, the longest one may ask for, and how often beat releases the holds past their time.
JIFEN_HOLD_DEFAULT_S = env_int("JIFEN_HOLD_DEFAULT_S", 900, minimum=10)
JIFEN_HOLD_MAX_S = env_int("JIFEN_HOLD_MAX_S", 30 * 24 * 3600, minimum=10)
if JIFEN_HOLD_DEFAULT_S > JIFEN_HOLD_MAX_S:
    raise ImproperlyConfigured("JIFEN_HOLD_DEFAULT_S must not exceed JIFEN_HOLD_MAX_S")
JIFEN_HOLD_SWEEP_S = env_float("JIFEN_HOLD_SWEEP_S", 30.0, minimum=1.0)
# Expiry (积分过期): the site's local time of day ("HH:MM") at which beat runs the daily expiry job,
# and how many accounts each of its transactions takes (their users' locks are held that long).
JIFEN_EXPIRY_RUN_AT = env_str("JIFEN_EXPIRY_RUN_AT", "00:05")
JIFEN_EXPIRY_CHUNK = env_int("JIFEN_EXPIRY_CHUNK", 1000, minimum=1)
# Notifications (SPEC §12): how many days ahead users are told of points about to expire.
JIFEN_EXPIRY_NOTICE_DAYS = env_int("JIFEN_EXPIRY_NOTICE_DAYS", 7, minimum=0)
# How long users' notifications are kept, read or not (0: for ever); beat forgets older ones daily.
JIFEN_NOTIFICATIONS_KEEP_DAYS = env_int("JIFEN_NOTIFICATIONS_KEEP_DAYS", 365, minimum=0)
# Webhooks: how often each process rereads which active endpoints want which events.
JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S = env_float("JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S", 1.0, minimum=0.0)
# Sending them (apps.notifications.services.deliveries): how often beat runs the sender, how long one
# POST may wait (to connect, and then for each read of the answer), how many go in flight at once.
JIFEN_WEBHOOK_SEND_S = env_float("JIFEN_WEBHOOK_SEND_S", 5.0, minimum=0.5)
JIFEN_WEBHOOK_TIMEOUT_S = env_float("JIFEN_WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1)
JIFEN_WEBHOOK_CONCURRENCY = env_int("JIFEN_WEBHOOK_CONCURRENCY", 8, minimum=1)


def _seconds_list(name: str, default: list[str]) -> list[float]:
    """A comma list of seconds (e.g. "5,60,300"): at least one, none negative, or the process stops."""
    items = env_list(name, default)
    try:
        values = [float(item) for item in items]
    except ValueError:
        raise ImproperlyConfigured(f"{name}={','.join(items)!r} is not a comma list of seconds") from None
    if not values or min(values) < 0:
        raise ImproperlyConfigured(f"{name} needs at least one number of seconds, none negative")
    return values


# After the n-th failed attempt the next waits the n-th of these seconds (the last one repeats),
# until the first attempt is JIFEN_WEBHOOK_GIVE_UP_S old: then the delivery is failed.
# A receiver down for an hour is tried at 5 s, 1 min, 6 min, 21 min, 51 min and 1 h 51 min after the
# first attempt: it has everything within an hour of coming back (sooner if a new event finds it up).
JIFEN_WEBHOOK_BACKOFF_S = _seconds_list("JIFEN_WEBHOOK_BACKOFF_S", ["5", "60", "300", "900", "1800", "3600", "7200", "14400"])
JIFEN_WEBHOOK_GIVE_UP_S = env_int("JIFEN_WEBHOOK_GIVE_UP_S", 86_400, minimum=0)
# An endpoint whose every attempt has failed for this long is disabled (the dashboard says so).
JIFEN_WEBHOOK_DISABLE_AFTER_S = env_int("JIFEN_WEBHOOK_DISABLE_AFTER_S", 86_400, minimum=0)
# Whether endpoints may be on loopback, private, link-local or otherwise internal addresses. Off in
# production, so the admin cannot be used to make this server POST into its own network; on with
# DEBUG (a receiver on localhost while developing). Turn it on for a receiver on the internal network.
JIFEN_WEBHOOK_ALLOW_PRIVATE = env_bool("JIFEN_WEBHOOK_ALLOW_PRIVATE", DEBUG)
# Delivered and failed deliveries (and their attempts) are deleted this many days after they were written.
JIFEN_WEBHOOK_KEEP_DAYS = env_int("JIFEN_WEBHOOK_KEEP_DAYS", 30, minimum=1)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# "text" for a person at a terminal (`make run`); "json" for a log collector: one JSON object a
# line, with the event, user, task type, rule, batch and source of the line where they apply
# (apps.core.log_format, apps.core.log_context). Celery's own lines follow it too (config/celery.py).
LOG_FORMAT = env_choice("LOG_FORMAT", "text", choices=("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"log_context": {"()": "apps.core.log_context.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.log_format.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["log_context"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"apps": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}},
}
if LOG_FORMAT == "json":
    # Django's own handlers (its DEBUG console, runserver's request lines) write text of their own
    # format: with JSON, its loggers write through the one console handler instead.
    LOGGING["loggers"] |= {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    }


def _daily_at(text: str):
    """A crontab for the local time of day `text` ("HH:MM")."""
    from celery.schedules import crontab

    hour, _, minute = text.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
        raise ImproperlyConfigured(f"JIFEN_EXPIRY_RUN_AT must be a time of day as HH:MM, not {text!r}")
    return crontab(hour=int(hour), minute=int(minute))


CELERY_BEAT_SCHEDULE = {
    "flush-outbox": {
        "task": "apps.tracking.tasks.flush_outbox",
        "schedule": env_float("JIFEN_OUTBOX_FLUSH_S", 10.0, minimum=1.0),
    },
    "sweep-inbox": {"task": "apps.tracking.tasks.sweep_inbox", "schedule": env_float("JIFEN_SWEEP_S", 10.0, minimum=1.0)},
    "heartbeat": {"task": "apps.tracking.tasks.heartbeat", "schedule": 10.0},
    "prune-seen-signatures": {"task": "apps.tracking.tasks.prune_seen_signatures", "schedule": 300.0},
    # A backfill run that could not be sent (the broker was down) stays queued; this sends it again.
    "resend-queued-backfills": {"task": "apps.rules.tasks.resend_queued_backfills", "schedule": 60.0},
    # Holds neither captured nor released by their time go back to their users.
    "release-expired-holds": {"task": "apps.rewards.tasks.release_expired_holds", "schedule": JIFEN_HOLD_SWEEP_S},
    # The daily expiry of points whose lots reached their end (CELERY_TIMEZONE is the site's TIME_ZONE).
    "expire-points": {"task": "apps.ledger.tasks.expire_points", "schedule": _daily_at(JIFEN_EXPIRY_RUN_AT)},
    # Users told ahead of time of points about to expire (JIFEN_EXPIRY_NOTICE_DAYS), once per account and day.
    "send-expiry-notices": {"task": "apps.ledger.tasks.send_expiry_notices", "schedule": _daily_at(JIFEN_EXPIRY_RUN_AT)},
    # The webhook outbox: send what is due, and forget deliveries older than JIFEN_WEBHOOK_KEEP_DAYS.
    # A tick still queued when the next is due is dropped (expires): with the workers busy, runs
    # never pile up behind the events; runs that do overlap take different deliveries (SKIP LOCKED).
    "send-webhooks": {
        "task": "apps.notifications.tasks.send_webhooks",
        "schedule": JIFEN_WEBHOOK_SEND_S,
        "options": {"expires": JIFEN_WEBHOOK_SEND_S},
    },
    "prune-webhook-deliveries": {"task": "apps.notifications.tasks.prune_webhook_deliveries", "schedule": 3600.0},
    "prune-notifications": {"task": "apps.notifications.tasks.prune_notifications", "schedule": 86400.0},
}
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True
# The queue the tracking tasks use; separate deployments (or test runs) sharing a Redis use their own.
CELERY_TASK_DEFAULT_QUEUE = env_str("JIFEN_QUEUE", "jifen")

# Rule sheets: a cell that starts like a formula is neutralised on export.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_USE_TRANSACTIONS = True
