"""Saathi settings: one module; every difference between environments is an environment variable.

Defaults are safe for a laptop: SQLite, the in-memory channel layer, debug on. With DJANGO_DEBUG off,
a missing secret stops start-up with a clear message. `.env.example` lists every variable.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
TESTING = "pytest" in sys.modules or env.bool("SAATHI_TESTING", default=False)

_DEV_SECRET = "saathi-insecure-development-key-never-use-in-production"  # noqa: S105  # nosec B105: refused when debug is off
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. With DJANGO_DEBUG off Saathi needs a long random secret: "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "rooms",
    "chat",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.StaffSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Data -------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Under ASGI each request runs on a thread of its own, so persistent per-thread connections would pile up
# until PostgreSQL refuses new clients: connections close at the end of each request or socket call.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if "postgresql" in DATABASES["default"]["ENGINE"]:
    if not TESTING:
        # Closing a connection hands it back to a small pool (psycopg_pool) instead of costing a new PostgreSQL
        # backend per socket call. Health checks make the pool test a connection before handing it out, so a
        # PostgreSQL restart costs one failed check per stale connection, never a failed request.
        # (pytest-django manages its own test connections; the server processes the tests start do pool.)
        # While PostgreSQL is away a caller waits at most `timeout` for a connection, then gets a DatabaseError:
        # a send is answered `unavailable` (retryable) instead of hanging the socket.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("SAATHI_DB_POOL_SIZE", default=16),
            "timeout": env.float("SAATHI_DB_POOL_TIMEOUT", default=2.0),
            "max_idle": 300,
        }
    # A connection attempt that gets no answer gives up instead of holding a thread forever.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
    # Values travel apart from the SQL text, so a failing statement in PostgreSQL's log shows `$1`, never
    # a message body (with client-side binding the log would quote what a member wrote).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    # A statement run this many times on a connection is prepared there (psycopg's own cache), so PostgreSQL
    # stops parsing and planning the send path's few statements for every batch. Django turns this off by
    # default for the sake of transaction-mode poolers (PgBouncer before 1.21); Saathi connects directly.
    # Empty = off.
    prepare_after = env.str("SAATHI_DB_PREPARE_THRESHOLD", default="5")
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = int(prepare_after) if prepare_after else None
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the room page read while a message is being written; a timeout instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# What this deployment keeps on Redis (channels and rate-limit counters) starts with this, so deployments
# (or test runs) sharing one Redis keep apart.
REDIS_PREFIX = env.str("SAATHI_CHANNEL_PREFIX", default="saathi")

# The channel layer is only a fast path between processes; the database is the source of truth.
# Pub/Sub never drops a message and re-subscribes after a Redis restart; payloads are encrypted at rest in Redis.
CHANNEL_ENCRYPTION_KEY = env.str("SAATHI_CHANNEL_ENCRYPTION_KEY", default=SECRET_KEY)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.PubSubChannelLayer",  # skips payloads it can't read
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": REDIS_PREFIX,
                "symmetric_encryption_keys": [CHANNEL_ENCRYPTION_KEY],
            },
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Identity ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Hashing cost is not under test here; Argon2 is still the production hasher (see test_settings).
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:sign_in"
LOGIN_REDIRECT_URL = "rooms:list"
LOGOUT_REDIRECT_URL = "home"

# Moderators, counsellors and admins act as staff only after a TOTP second factor (django-otp).
SAATHI_REQUIRE_STAFF_2FA = env.bool("SAATHI_REQUIRE_STAFF_2FA", default=True)
OTP_TOTP_ISSUER = "Saathi"

# Login throttling (django-axes): lock a username after repeated failures; the message stays generic.
AXES_FAILURE_LIMIT = env.int("SAATHI_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # axes would otherwise log usernames next to IP addresses
AXES_DISABLE_ACCESS_LOG = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("SAATHI_PROXY_COUNT", default=0)

# Sessions: idle sessions expire; each request (and each socket heartbeat) slides the window.
SESSION_COOKIE_AGE = env.int("SAATHI_SESSION_IDLE_SECONDS", default=60 * 60 * 2)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- Security headers (production turns these on through DJANGO_DEBUG=false) -------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SAATHI_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SAATHI_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies are only accepted over HTTPS, on this exact host, with Path=/.
    SESSION_COOKIE_NAME = "__Host-saathi-session"
    CSRF_COOKIE_NAME = "__Host-saathi-csrf"
else:
    SESSION_COOKIE_NAME = "saathi-session"
    CSRF_COOKIE_NAME = "saathi-csrf"

# Content-Security-Policy: the site itself and nothing else; scripts and styles carry a per-response nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Static files ------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("SAATHI_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LANGUAGE_CODE = "en"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

# --- Product settings --------------------------------------------------------------------------------
# Per member per room: a burst, then a steady rate ("10/10second;30/minute" = about 10 at once, 30 a minute).
SAATHI_SEND_RATE = env.str("SAATHI_SEND_RATE", default="10/10second;30/minute")
# A socket that keeps hitting the limit is closed (4429) after this many refusals within a minute.
SAATHI_FLOOD_CLOSE_AFTER = env.int("SAATHI_FLOOD_CLOSE_AFTER", default=20)
# Any frame, of any type: a cap that stops a client from spinning the server with pings or junk.
SAATHI_FRAMES_PER_MINUTE = env.int("SAATHI_FRAMES_PER_MINUTE", default=120)
SAATHI_MAX_SOCKETS_PER_MEMBER = env.int("SAATHI_MAX_SOCKETS_PER_MEMBER", default=3)
# When a process is overloaded, a send is answered `unavailable` at once (nothing stored; the browser retries it
# with the same client_id) instead of queueing without limit: an overloaded process stays quick to answer, and
# joins and back-fills still get their turn at the database. Overloaded: a send has waited for the database
# longer than SAATHI_MAX_SEND_WAIT seconds, or SAATHI_MAX_SENDS_WAITING sends wait. The wait is the signal (a
# burst from many sockets at once is written in a few batches); the count only bounds memory.
SAATHI_MAX_SEND_WAIT = env.float("SAATHI_MAX_SEND_WAIT", default=1.0)
SAATHI_MAX_SENDS_WAITING = env.int("SAATHI_MAX_SENDS_WAITING", default=1024)
# Batches of sends start at most this often per process (seconds) while sends come faster than one per interval
# (averaged over the last few intervals): the next batch waits out the rest of the interval so more of them share one
# transaction (a batch of one costs ~1 ms of CPU, each further message a tenth of that). Slower than that, every
# send is written at once. 0 writes each batch as soon as it can.
SAATHI_SEND_BATCH_INTERVAL = env.float("SAATHI_SEND_BATCH_INTERVAL", default=0.015)
# What stores a batch of sends (chat/sending.py calls it). Always the real store: only the benchmark's
# "persistence and crisis scan off" variant (bench/nostore.py) points it elsewhere, to measure their cost.
SAATHI_SEND_STORE = "chat.services.post_messages"
# Where batches of sends are stored: "process", a send writer process beside each server process (chat/writer.py:
# the rules, the crisis scan and the database write run on another core, not under the event loop's interpreter
# lock), or "thread", this process's database thread. Default: the writer process on PostgreSQL; the thread on
# SQLite (one file, one writer) and in the test suite's own process (its test transactions are invisible to
# another process; the servers the system tests start use the default).
SAATHI_SEND_WRITER = env.str(
    "SAATHI_SEND_WRITER",
    default="process" if "postgresql" in DATABASES["default"]["ENGINE"] and not TESTING else "thread",
)
if SAATHI_SEND_WRITER not in ("process", "thread"):
    raise ImproperlyConfigured("SAATHI_SEND_WRITER must be 'process' or 'thread'")
# A writer that has not answered a batch in this many seconds is replaced (its senders hear `unavailable`).
SAATHI_SEND_WRITER_TIMEOUT = env.float("SAATHI_SEND_WRITER_TIMEOUT", default=30.0)
# Per client address (scope["client"]: the peer, or X-Forwarded-For only under `serve --proxy-headers`):
# sockets open at once, and handshakes ("30/10second;120/minute": a meeting's start from one shared
# network, then 2 a second). Refused with 4429. 0 / "" turns a cap off. See docs/access-control.md.
SAATHI_MAX_SOCKETS_PER_IP = env.int("SAATHI_MAX_SOCKETS_PER_IP", default=50)
SAATHI_HANDSHAKES_PER_IP = env.str("SAATHI_HANDSHAKES_PER_IP", default="30/10second;120/minute")
SAATHI_HISTORY_ON_JOIN = env.int("SAATHI_HISTORY_ON_JOIN", default=50)
SAATHI_RESUME_BATCH = 200
SAATHI_WEBSOCKET_MAX_MESSAGE_BYTES = 64 * 1024  # daphne's hard ceiling; 8 KiB is the protocol's limit
SAATHI_PING_INTERVAL = env.int("SAATHI_PING_INTERVAL", default=20)
SAATHI_PING_TIMEOUT = env.int("SAATHI_PING_TIMEOUT", default=20)

# --- Logging: never a message body, never a handle next to an IP, never an email ----------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Exceptions are logged as class and stack only, from every logger (chat/failures.py).
    "formatters": {
        "plain": {"()": "chat.failures.RedactingFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "filters": {
        "not_a_starting_probe": {
            "()": "django.utils.log.CallbackFilter",
            "callback": "ext://chat.failures.not_a_starting_probe",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("SAATHI_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},  # daphne's access log carries client IPs
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["not_a_starting_probe"]},  # a starting process's 503 is expected
    },
}

# --- Test-only toggles -------------------------------------------------------------------------------
if TESTING:
    AXES_ENABLED = env.bool("SAATHI_AXES_IN_TESTS", default=True)

# --- Background worker: each step is `step(*, now) -> int`, locked and idempotent --------------------
SAATHI_WORKER_STEPS: list[str] = env.list(
    "SAATHI_WORKER_STEPS",
    default=[
        "moderation.services.escalate_due_flags",
        "rooms.services.open_and_close_meetings",
        "chat.services.purge_expired_messages",
        "accounts.services.purge_idle_guest_passes",
    ],
)

# --- Meetings: schedules, the directory and the feeds (docs/meetings.md) ------------------------------
# The zone a person sees times in until their browser says otherwise, and a new meeting's default zone.
SAATHI_DEFAULT_TZ = env.str("SAATHI_DEFAULT_TZ", default="Asia/Kolkata")
# How long before the start a new meeting's doors open (the waiting room), and its end-of-meeting notice.
SAATHI_DOORS_OPEN_MINUTES = env.int("SAATHI_DOORS_OPEN_MINUTES", default=10)
SAATHI_ENDING_NOTICE_MINUTES = env.int("SAATHI_ENDING_NOTICE_MINUTES", default=5)
# `import_meetings URL`: only http(s), and a feed is read with a timeout and a size cap.
SAATHI_FEED_FETCH_TIMEOUT = env.int("SAATHI_FEED_FETCH_TIMEOUT", default=15)
SAATHI_FEED_MAX_BYTES = env.int("SAATHI_FEED_MAX_BYTES", default=5 * 1024 * 1024)
# How far ahead the directory lists "next" meetings.
SAATHI_DIRECTORY_DAYS_AHEAD = env.int("SAATHI_DIRECTORY_DAYS_AHEAD", default=7)

# --- Crisis path and moderation (docs/moderation.md) ------------------------------------------------
# How long a flag waits for an acknowledgement at each step (primary, then backup, then supervisor), by level.
SAATHI_FLAG_DEADLINE_SECONDS = {
    "imminent": env.int("SAATHI_FLAG_DEADLINE_IMMINENT", default=60),
    "high": env.int("SAATHI_FLAG_DEADLINE_HIGH", default=3 * 60),
    "concern": env.int("SAATHI_FLAG_DEADLINE_CONCERN", default=15 * 60),
}
# How many messages before and after a flagged one staff see with it.
SAATHI_FLAG_CONTEXT_MESSAGES = env.int("SAATHI_FLAG_CONTEXT_MESSAGES", default=4)
# Helplines shown to a member in crisis: the region(s) this deployment serves. JSON list of {name, number, hours}.
SAATHI_HELPLINES: list[dict[str, str]] = env.json(
    "SAATHI_HELPLINES",
    default=[
        {"name": "Tele-MANAS (India)", "number": "14416", "hours": "24 hours, every day; free, many languages"},
        {"name": "988 Suicide & Crisis Lifeline (US)", "number": "988", "hours": "24 hours, every day; call or text"},
    ],
)
# The last step of escalation, outside Saathi: email these addresses, and POST to this webhook (optional).
# Neither carries a message or a handle: only the flag number, level, room and a link to the dashboard.
SAATHI_CRISIS_EMAILS: list[str] = env.list("SAATHI_CRISIS_EMAILS", default=[])
SAATHI_CRISIS_WEBHOOK_URL = env.str("SAATHI_CRISIS_WEBHOOK_URL", default="")
SAATHI_SITE_URL = env.str("SAATHI_SITE_URL", default="http://127.0.0.1:8000")
EMAIL_CONFIG = env.email_url("DJANGO_EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="saathi@localhost")
