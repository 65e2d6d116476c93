"""Settings for the gateway platform, driven by environment variables.

Every variable is listed in the README's configuration table. Defaults are safe
for a laptop: no ``DATABASE_URL`` / ``REDIS_URL`` means embedded PostgreSQL and
Redis under ``GATEWAY_VAR_DIR`` (see ``gateway_platform.embedded``).
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    file_name = env.str(f"{name}_FILE", default="")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


VAR_DIR = Path(env.str("GATEWAY_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# `make run` (the launcher) sets GATEWAY_LOCAL=1: a laptop, embedded servers, loopback trusted.
LOCAL_MODE = env.bool("GATEWAY_LOCAL", default=False)


def _laptop_secret_key() -> str:
    # A stable per-checkout key so sessions survive restarts without configuration.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_secret("DJANGO_SECRET_KEY") or _laptop_secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "channels",
    "tenants",
    "providers",
    "routing",
    "billing",
    "caching",
    "serving",
    "axes",  # login throttling (after the project apps, per its docs)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every Django page (see below)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into a 429 page
]

ROOT_URLCONF = "gateway_platform.urls"
ASGI_APPLICATION = "gateway_platform.asgi.application"

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
            ],
        },
    },
]

# --- PostgreSQL (always; embedded when DATABASE_URL is unset) -----------------
DATABASE_URL = env_secret("DATABASE_URL")
if not DATABASE_URL:
    from gateway_platform import embedded

    DATABASE_URL = embedded.postgres_url(VAR_DIR)

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (with pgvector).")
DATABASES["default"].setdefault("OPTIONS", {})
if "host" in DATABASES["default"]["OPTIONS"]:
    # django-environ leaves a Unix socket directory (?host=/path) in OPTIONS; HOST is where Django looks.
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# A psycopg pool per process; threads that run ORM calls for async code share it.
DATABASES["default"]["OPTIONS"]["pool"] = {
    "min_size": env.int("DATABASE_POOL_MIN", default=1),
    "max_size": env.int("DATABASE_POOL_MAX", default=10),
    "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
}
DATABASES["default"]["CONN_MAX_AGE"] = 0  # required with a pool
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_gateway")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis (always; embedded when REDIS_URL is unset) -------------------------
REDIS_URL = env_secret("REDIS_URL")
if not REDIS_URL:
    from gateway_platform import embedded

    REDIS_URL = embedded.redis_url(VAR_DIR)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gw-cache",
    }
}


def _celery_broker_url(redis_url: str) -> str:
    # kombu spells Unix sockets "redis+socket://"; redis-py spells them "unix://".
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_celery_broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the worker logs through LOGGING below (JSON or console)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Provider health probes, and the worker heartbeat /health reads (stale after 3 missed runs).
GATEWAY_HEALTH_PROBE_SECONDS = env.float("GATEWAY_HEALTH_PROBE_SECONDS", default=30.0)
GATEWAY_CELERY_HEARTBEAT_SECONDS = 10.0
CELERY_BEAT_SCHEDULE = {
    "drain-usage-events": {
        "task": "billing.tasks.drain_usage_events",
        "schedule": env.float("GATEWAY_USAGE_DRAIN_SECONDS", default=1.0),
    },
    "probe-providers": {
        "task": "providers.tasks.probe_providers",
        "schedule": GATEWAY_HEALTH_PROBE_SECONDS,
        "options": {"expires": GATEWAY_HEALTH_PROBE_SECONDS},
    },
    "drain-cache-entries": {
        "task": "caching.tasks.drain_cache_entries",
        "schedule": env.float("GATEWAY_CACHE_DRAIN_SECONDS", default=1.0),
    },
    "evict-cache-entries": {
        "task": "caching.tasks.evict_cache_entries",
        "schedule": env.float("GATEWAY_CACHE_EVICT_SECONDS", default=60.0),
    },
    "rollup-cache-stats": {"task": "caching.tasks.rollup_cache_stats", "schedule": 300.0},
    "export-trajectories": {
        "task": "routing.tasks.export_trajectories",
        "schedule": env.float("GATEWAY_TRAJECTORY_EXPORT_SECONDS", default=60.0),
    },
    "celery-heartbeat": {
        "task": "providers.tasks.heartbeat",
        "schedule": GATEWAY_CELERY_HEARTBEAT_SECONDS,
        "options": {"expires": GATEWAY_CELERY_HEARTBEAT_SECONDS},
    },
}

# --- Auth, i18n, static ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]  # project-wide CSS and vendored assets
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static without a collectstatic step
LOGIN_URL = "login"  # django.contrib.auth.urls under /accounts/
LOGIN_REDIRECT_URL = "/portal/"  # the landing page for most users; `next` wins when present

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
# DJANGO_HTTPS=1 (served over HTTPS, e.g. behind a TLS-terminating proxy) turns the deploy
# profile on: HTTPS redirect, secure cookies and HSTS, each still overridable on its own.
# `manage.py check --deploy` is clean in that profile (tests/test_production_profile.py).
HTTPS = env.bool("DJANGO_HTTPS", default=False) and not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HTTPS)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    # Trust X-Forwarded-Proto from the TLS-terminating proxy (and only then).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content-Security-Policy (django-csp) -------------------------------------------------
# Scripts only from our own static files (no inline script anywhere: the API docs use the split
# Swagger view); inline style attributes are allowed (the reports' and portal's bars use them).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Login throttling (django-axes) ------------------------------------------------
# Every login form (portal, admin, DRF) goes through axes: after N failures for one
# username from one IP address, that pair is locked out for the cool-off time. Locking on
# the pair (not the IP alone) keeps a whole office behind one NAT from being locked out.
# The address is REMOTE_ADDR: behind a reverse proxy that is the proxy's, so the lock
# is effectively per username.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_VERBOSE = False  # no start-up banner on every management command
AXES_FAILURE_LIMIT = env.int("GATEWAY_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("GATEWAY_LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Channels --------------------------------------------------------------------
# The /v1/ consumers do not use groups, so no channel layer is configured.
CHANNEL_LAYERS: dict[str, dict[str, object]] = {}

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Safe default for a viewset that forgets to say; the tenants/billing viewsets set role rules.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # A signed-in browser session (CSRF-checked) or `Authorization: Bearer <personal token>`.
    # The token class comes first so an unauthenticated call gets 401 + WWW-Authenticate: Bearer.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.tokens.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "gateway_platform.drf.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gateway management API",
    "DESCRIPTION": (
        "Tenants, teams, members, API keys, budgets and usage. Authenticate with a signed-in session or "
        "`Authorization: Bearer <personal token>` (create one at /api/tokens/ while signed in). "
        "You see and change exactly what your role allows in the admin and the portal."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "KeyStatusEnum": "tenants.serializers.KEY_STATUSES",
    },
    "SWAGGER_UI_DIST": "SIDECAR",  # served from the drf-spectacular-sidecar package: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway_platform.drf.document_errors",
    ],
}

# --- The gateway --------------------------------------------------------------------
GATEWAY = {
    # Largest accepted /v1/ request body, in bytes (413 above it).
    "MAX_BODY_BYTES": env.int("GATEWAY_MAX_BODY_BYTES", default=8 * 1024 * 1024),
    # How often each process compares its configuration snapshot with the version stamp in Redis:
    # admin edits (and key revocations) reach every process within this bound; 0 checks per request.
    "CONFIG_POLL_SECONDS": env.float("GATEWAY_CONFIG_POLL_SECONDS", default=0.5),
    # A whole answer (or held stream) whose client left is finished in the background for its real
    # cost (the provider charges it anyway), for at most this long; then it is cancelled.
    "ABANDONED_ANSWER_SECONDS": env.float("GATEWAY_ABANDONED_ANSWER_SECONDS", default=300.0),
    # On shutdown, how long open requests (python -m gateway_platform serve) and answers still finishing
    # for clients that left (the ASGI lifespan) may take.
    "SHUTDOWN_GRACE_SECONDS": env.float("GATEWAY_SHUTDOWN_GRACE_SECONDS", default=30.0),
    # SSE comment sent while the upstream is silent, every N seconds.
    "KEEPALIVE_SECONDS": env.float("GATEWAY_KEEPALIVE_SECONDS", default=15.0),
    # Mock upstream used when no provider credential is configured (set by `make run`).
    "MOCK_UPSTREAM_URL": env.str("GATEWAY_MOCK_UPSTREAM_URL", default=""),
    # Rate limits applied when neither key, team nor tenant sets one.
    "DEFAULT_RPM": env.int("GATEWAY_DEFAULT_RPM", default=600),
    "DEFAULT_TPM": env.int("GATEWAY_DEFAULT_TPM", default=1_000_000),
    # Circuit breakers: open after N consecutive failures, probe again after the reset timeout.
    "CIRCUIT_FAILURES": env.int("GATEWAY_CIRCUIT_FAILURES", default=5),
    "CIRCUIT_RESET_SECONDS": env.float("GATEWAY_CIRCUIT_RESET_SECONDS", default=30.0),
    # Load balancing (routing.balancing): a request counted in flight longer than this is taken to be
    # lost (its process died) and no longer counted; a time-to-first-token sample older than the
    # window no longer counts, so the deployment is measured again.
    "BALANCE_IN_FLIGHT_MAX_SECONDS": env.float("GATEWAY_BALANCE_IN_FLIGHT_MAX_SECONDS", default=600.0),
    "BALANCE_LATENCY_WINDOW_SECONDS": env.float("GATEWAY_BALANCE_LATENCY_WINDOW_SECONDS", default=300.0),
    # Retries of one deployment before moving to the next, with exponential backoff and jitter.
    "RETRIES_PER_DEPLOYMENT": env.int("GATEWAY_RETRIES_PER_DEPLOYMENT", default=1),
    "RETRY_BACKOFF_SECONDS": env.float("GATEWAY_RETRY_BACKOFF_SECONDS", default=0.25),
    "RETRY_MAX_WAIT_SECONDS": env.float("GATEWAY_RETRY_MAX_WAIT_SECONDS", default=5.0),
    # /metrics: open to these networks, or to anyone sending this bearer token.
    "METRICS_TOKEN": env_secret("GATEWAY_METRICS_TOKEN"),
    # Loopback only on a laptop: behind a same-host reverse proxy every request is "from" loopback.
    "METRICS_ALLOWED_NETWORKS": [
        ipaddress.ip_network(net)
        for net in env.list(
            "GATEWAY_METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"] if DEBUG or LOCAL_MODE else []
        )
    ],
    # Refuse (a system check error) rather than warn when Redis may lose data (gateway_platform.redis_durability).
    "REDIS_REQUIRE_DURABLE": env.bool("GATEWAY_REDIS_REQUIRE_DURABLE", default=False),
    # Reverse proxies whose X-Forwarded-For is believed (gateway_platform.client_address); empty: none.
    "TRUSTED_PROXIES": [ipaddress.ip_network(net) for net in env.list("GATEWAY_TRUSTED_PROXIES", default=[])],
    # Failed /v1/ authentications per client address per minute before it gets 429 for a minute.
    "AUTH_FAILURE_LIMIT": env.int("GATEWAY_AUTH_FAILURE_LIMIT", default=60),
    # A cached API key (and an unknown-key entry) is re-read from PostgreSQL after this many seconds,
    # so a revocation whose Redis version bump was lost still takes effect within this bound.
    "KEY_CACHE_MAX_AGE_SECONDS": env.float("GATEWAY_KEY_CACHE_MAX_AGE_SECONDS", default=15.0),
    # Unknown key hashes remembered per process (apart from valid keys, which they never evict).
    "UNKNOWN_KEY_CACHE_MAX": env.int("GATEWAY_UNKNOWN_KEY_CACHE_MAX", default=10_000),
    # Where usage events wait when Redis is unreachable (replayed by the drain task).
    "USAGE_SPOOL_DIR": Path(env.str("GATEWAY_USAGE_SPOOL_DIR", default=str(VAR_DIR / "spool"))),
    # Fernet keys for tenants' own provider credentials (first encrypts); empty: derived from SECRET_KEY.
    "ENCRYPTION_KEYS": [k.strip() for k in env_secret("GATEWAY_ENCRYPTION_KEYS").split(",") if k.strip()],
    # Threads embedding prompts for the semantic cache (off the event loop).
    "CACHE_EMBED_THREADS": env.int("GATEWAY_CACHE_EMBED_THREADS", default=2),
    # Answers queued for the cache-entry drain (caching.entry_queue); beyond it the oldest are dropped.
    "CACHE_QUEUE_MAX": env.int("GATEWAY_CACHE_QUEUE_MAX", default=10_000),
    # Per-message caps in characters, seed 002's names and defaults (0 turns one off): routing.reduction.caps.
    "SYSTEM_MAX_CHARS": env.int("SYSTEM_MAX_CHARS", default=40_000),
    "USER_MSG_MAX_CHARS": env.int("USER_MSG_MAX_CHARS", default=120_000),
    "TOOL_RESULT_MAX_CHARS": env.int("TOOL_RESULT_MAX_CHARS", default=20_000),
    # How long an agent session stays on the deployment that served it (routing.sessions); 0 turns it off.
    "SESSION_AFFINITY_SECONDS": env.int("GATEWAY_SESSION_AFFINITY_SECONDS", default=1800),
    # OpenAI-compatible hosts that get the session's prompt_cache_key (others may reject unknown fields).
    "PROMPT_CACHE_KEY_HOSTS": env.list("GATEWAY_PROMPT_CACHE_KEY_HOSTS", default=["api.openai.com"]),
    # The cascade's quality check, seed 002's names: heuristic | llm (a billed call to the cheap tier as judge) | none.
    "CASCADE_QUALITY_CHECK_MODE": env.str("CASCADE_QUALITY_CHECK_MODE", default="heuristic").strip().lower(),
    # Seed 002's default: a cheap text answer shorter than this fails the check (0 = off; tool calls are exempt).
    "CASCADE_MIN_RESPONSE_LENGTH": env.int("CASCADE_MIN_RESPONSE_LENGTH", default=100),
    "CASCADE_LOG_OUTCOMES": env.bool("CASCADE_LOG_OUTCOMES", default=True),
    # Seed 003's telemetry.exportPath: one JSON line per request, appended by beat (routing.telemetry); empty = off.
    "TRAJECTORY_EXPORT_PATH": env.str("GATEWAY_TRAJECTORY_EXPORT_PATH", default=""),
    "TRAJECTORY_MAX_BYTES": env.int("GATEWAY_TRAJECTORY_MAX_BYTES", default=50 * 1024 * 1024),
    "TRAJECTORY_BACKUPS": env.int("GATEWAY_TRAJECTORY_BACKUPS", default=5),
}

if GATEWAY["CASCADE_QUALITY_CHECK_MODE"] not in ("heuristic", "llm", "none"):
    raise ImproperlyConfigured("CASCADE_QUALITY_CHECK_MODE must be heuristic, llm or none.")

# --- Budgets, rate limits, usage rollups and alerts (billing) --------------------------
_retention_days = env.int("GATEWAY_USAGE_RETENTION_DAYS", default=0)
if 0 < _retention_days < 2:
    raise ImproperlyConfigured("GATEWAY_USAGE_RETENTION_DAYS must be 0 (keep forever) or at least 2.")
GATEWAY |= {
    # A budget reservation of a process that died is released after this long (> any request's duration).
    "BUDGET_RESERVATION_TTL_SECONDS": env.int("GATEWAY_BUDGET_RESERVATION_TTL_SECONDS", default=1800),
    # In-flight records (billing.inflight): each gateway process's heartbeat period (three missed: dead,
    # its requests are billed by estimate), and the age after which any in-flight record is billed so.
    "INFLIGHT_HEARTBEAT_SECONDS": env.float("GATEWAY_INFLIGHT_HEARTBEAT_SECONDS", default=5.0),
    "INFLIGHT_MAX_SECONDS": env.float("GATEWAY_INFLIGHT_MAX_SECONDS", default=1800.0),
    # Output cap reserved (and set upstream) for a request under a budget that names none, when
    # neither its tier nor its models set one.
    "DEFAULT_MAX_OUTPUT_TOKENS": env.int("GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS", default=4096),
    # Raw usage events older than this many days are deleted nightly (rollups are kept); 0 keeps all.
    "USAGE_RETENTION_DAYS": _retention_days,
    "ALERT_WEBHOOK_TIMEOUT_SECONDS": env.float("GATEWAY_ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0),
    # Non-public networks that tenant- or admin-set URLs (webhooks, provider base URLs via the API) may
    # reach anyway: on-premises targets. Empty: only public addresses (gateway_platform.outbound).
    "OUTBOUND_ALLOWED_NETWORKS": [
        ipaddress.ip_network(net) for net in env.list("GATEWAY_OUTBOUND_ALLOWED_NETWORKS", default=[])
    ],
    # Non-public networks provider base URLs may name besides those: loopback only on a laptop or in
    # DEBUG (the bundled mock upstream, a local Ollama); list a private network for on-premises models.
    "PROVIDER_ALLOWED_NETWORKS": [
        ipaddress.ip_network(net)
        for net in env.list(
            "GATEWAY_PROVIDER_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"] if DEBUG or LOCAL_MODE else []
        )
    ],
}
CELERY_BEAT_SCHEDULE |= {
    "rollup-current-hour": {"task": "billing.tasks.rollup_current_hour", "schedule": 60.0, "options": {"expires": 60}},
    "rollup-days": {"task": "billing.tasks.rollup_days", "schedule": crontab(minute=7)},
    "prune-usage-events": {"task": "billing.tasks.prune_usage_events", "schedule": crontab(hour=3, minute=17)},
    "check-budget-alerts": {
        "task": "billing.tasks.check_budget_alerts",
        "schedule": env.float("GATEWAY_BUDGET_ALERT_SECONDS", default=30.0),
    },
    "reconcile-budgets": {"task": "billing.tasks.reconcile_budgets", "schedule": 300.0},
    "reap-in-flight": {
        "task": "billing.tasks.reap_in_flight",
        "schedule": env.float("GATEWAY_INFLIGHT_REAP_SECONDS", default=15.0),
        "options": {"expires": 15},
    },
    "retry-budget-alerts": {"task": "billing.tasks.retry_budget_alerts", "schedule": 30.0},
}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="gateway@localhost")

# --- Logging ------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'console'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "gateway_platform.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        },
        "console": {"()": "gateway_platform.logging.ConsoleFormatter"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # Celery's per-task chatter (beat sends, received, succeeded) every second; failures stay.
        "celery.beat": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        # django-axes logs every successful login at INFO; lockouts and repeated failures stay (WARNING).
        "axes": {"level": "WARNING"},
    },
}

# --- Responses API (serving/responses) -------------------------------------------
# `store: true` responses are kept this long for previous_response_id and GET /v1/responses/{id}.
GATEWAY["RESPONSES_TTL_SECONDS"] = env.int("GATEWAY_RESPONSES_TTL_SECONDS", default=30 * 24 * 3600)
CELERY_BEAT_SCHEDULE["prune-stored-responses"] = {"task": "serving.tasks.prune_stored_responses", "schedule": 3600.0}
