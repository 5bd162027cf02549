"""Settings, 12-factor style: everything that differs between machines comes from the environment.

Defaults are the embedded ones `make run` uses (SQLite, a filesystem broker, demo mode);
production sets DJANGO_ENV=production (or DEBUG=False) and real services.
"""

import os
from pathlib import Path

import environ

from activation_manager import schedules as _schedules

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# The git-ignored .env that `make run` writes. ENV_FILE names another file; ENV_FILE="" reads none (the
# test settings set that, so a developer's SECRET_KEY, DEMO_MODE or DATABASE_URL never reaches a test run).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

PRODUCTION = env.str("DJANGO_ENV", default="development") == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
TESTING = env.bool("TESTING", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me" if not PRODUCTION else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "activation_manager",
    "platforms",
    "credentials",
    "audiences",
    "syncs",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "activation_manager.urls"
WSGI_APPLICATION = "activation_manager.wsgi.application"

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
                "activation_manager.context_processors.product",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let web, worker and beat share the file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures per username+IP locks for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_USERNAME_CALLABLE = "activation_manager.auth.axes_username"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded customer files live outside any served directory (mode 0700, files 0600) and are deleted after import,
# or after UPLOAD_PENDING_HOURS when nobody mapped their columns (audiences/uploads.py).
UPLOAD_DIR = Path(env.str("UPLOAD_DIR", default=str(VAR_DIR / "uploads")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=5 * 1024**3)
UPLOAD_PENDING_HOURS = env.float("UPLOAD_PENDING_HOURS", default=24)
# The size limit is enforced while the body streams in; a file too large for memory is spooled into UPLOAD_DIR
# itself (never the system's temporary folder), then moved into place.
FILE_UPLOAD_HANDLERS = [
    "audiences.uploads.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "audiences.uploads.UploadDirFileHandler",
]

# Credentials: comma-separated Fernet keys, newest first. The first encrypts, all decrypt.
CREDENTIALS_KEYS = env.list("CREDENTIALS_KEYS", default=[])

# Celery. Without REDIS_URL the broker is kombu's filesystem transport under var/, so `make run`
# needs no server; production and CI point REDIS_URL at Redis.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker"))).resolve()
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    # Longer than the longest task time limit (an import: 6 h 5 min): Redis re-delivers an unacknowledged message
    # after this long, and must never do so under a worker still running it. A worker that died is noticed much
    # sooner by its job's lease (activation_manager.leases).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    for _folder in ("queue", "control", "processed"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),  # in and out must be the same folder
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Two queues: "bulk" for the long jobs (imports, sync runs, purges), "default" for everything short (watchdogs,
# revalidation, alerts, platform deletions), each with its own workers, so throttled syncs sleeping in their slots
# never hold up a watchdog. Every system schedule is declared in activation_manager/schedules.py.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {name: {"queue": "bulk"} for name in (
    "audiences.import_audience", "audiences.purge_audience", "syncs.run_sync")}
CELERY_BEAT_SCHEDULE = _schedules.SYSTEM_SCHEDULES
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Demo mode: adapters talk to the sandbox platforms (sandbox/, `manage.py run_sandbox`) instead of the real APIs.
DEMO_MODE = env.bool("DEMO_MODE", default=False) and not PRODUCTION
FAKE_PLATFORMS_URL = env.str("FAKE_PLATFORMS_URL", default="http://127.0.0.1:8765")


def _endpoint(name: str, real: str, demo_path: str) -> str:
    return env.str(name, default=f"{FAKE_PLATFORMS_URL}{demo_path}" if DEMO_MODE else real)


# The platforms, one adapter class each (its module describes the platform: name, form, match keys, endpoint,
# sandbox credentials). The registry and the Platform rows follow this list.
PLATFORM_ADAPTERS = env.list("PLATFORM_ADAPTERS", default=[
    "platforms.adapters.meta.MetaAdapter",
    "platforms.adapters.google_datamanager.GoogleDataManagerAdapter",
    "platforms.adapters.google_ads.GoogleAdsAdapter",
    "platforms.adapters.linkedin.LinkedInAdapter",
    "platforms.adapters.tiktok.TikTokAdapter",
    "platforms.adapters.ttd.TradeDeskAdapter",
    "platforms.adapters.netflix.NetflixAdapter",
])
# Endpoint overrides by platform code (tests, benchmarks); each adapter also reads its own environment variable
# (PlatformAdapter.endpoint_setting, e.g. META_GRAPH_URL) and knows its sandbox address for demo mode.
PLATFORM_ENDPOINTS: dict[str, str] = {}
# Plain-text gRPC, only ever to a loopback endpoint (the sandbox in tests, the demo, benchmarks); never in
# production, where every channel is TLS.
GRPC_PLAINTEXT_LOOPBACK = env.bool("GRPC_PLAINTEXT_LOOPBACK", default=True) and not PRODUCTION
# Where Google refresh tokens are exchanged for access tokens (the fake OAuth endpoint in demo mode).
GOOGLE_OAUTH_TOKEN_URL = _endpoint(
    "GOOGLE_OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token", "/google-oauth/token"
)
PLATFORM_HTTP_TIMEOUT = env.float("PLATFORM_HTTP_TIMEOUT", default=30.0)

# Background jobs (activation_manager.leases): a working job beats every JOB_HEARTBEAT_SECONDS, from a helper
# thread too while it waits on a platform or a long statement. A sync run or an import silent for its *_STALE_AFTER
# seconds is handed to another worker by the watchdog (every minute), at most JOB_MAX_TAKEOVERS times.
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=20.0)
JOB_MAX_TAKEOVERS = env.int("JOB_MAX_TAKEOVERS", default=3)
SYNC_STALE_AFTER = env.int("SYNC_STALE_AFTER", default=120)
# Platforms that report on a request later (Google's Data Manager: "Wait for 30 minutes, then send a
# RetrieveRequestStatus request"): first asked this many seconds after sending, then with a doubling wait, for at
# most PLATFORM_REPORT_GIVE_UP seconds. The sandbox reports at once, so demo mode asks after a few seconds.
PLATFORM_REPORT_AFTER = env.int("PLATFORM_REPORT_AFTER", default=5 if DEMO_MODE else 1800)
PLATFORM_REPORT_GIVE_UP = env.int("PLATFORM_REPORT_GIVE_UP", default=24 * 3600)
IMPORT_STALE_AFTER = env.int("IMPORT_STALE_AFTER", default=120)
# A queued run no worker picked up within this long fails (are the workers running?).
SYNC_QUEUED_STALE_AFTER = env.int("SYNC_QUEUED_STALE_AFTER", default=3600)
# Platform calls are retried up to PLATFORM_RETRY_ATTEMPTS times.
PLATFORM_RETRY_ATTEMPTS = env.int("PLATFORM_RETRY_ATTEMPTS", default=8)
PLATFORM_RETRY_BASE_SECONDS = env.float("PLATFORM_RETRY_BASE_SECONDS", default=1.0)
PLATFORM_RETRY_MAX_SECONDS = env.float("PLATFORM_RETRY_MAX_SECONDS", default=60.0)
# Longest Retry-After we wait in place; a platform asking for more still gets it, in several waits.
PLATFORM_MAX_RETRY_AFTER = env.float("PLATFORM_MAX_RETRY_AFTER", default=900.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The SDKs log request bodies at DEBUG; keep them quiet so nothing they carry reaches a log.
        "facebook_business": {"level": "WARNING"},
        "google.ads.googleads": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# --- Security hardening (docs/security.md) -------------------------------------------------------------
# Kept in one block so it merges on its own.

# Outbound requests to user-set URLs (activation_manager/egress.py). Hosts or networks that may resolve to
# private / shared addresses (a partner on a private link), e.g. "partner.corp,10.20.0.0/16".
EGRESS_ALLOWED_HOSTS = env.list("EGRESS_ALLOWED_HOSTS", default=[])
# The bundled sandbox (FAKE_PLATFORMS_URL, exactly that scheme, host and port) may be contacted: demo mode
# and tests only, never in production.
EGRESS_ALLOW_SANDBOX = env.bool("EGRESS_ALLOW_SANDBOX", default=DEMO_MODE or TESTING) and not PRODUCTION

# Login throttling behind reverse proxies: TRUSTED_PROXY_COUNT is how many proxies stand in front of the app
# (0: clients connect directly). django-axes reads the client address through django-ipware (the
# django-axes[ipware] extra): X-Forwarded-For as the last proxy sends it lists the client and every proxy but
# the last one, and ipware's proxy count counts those proxies, so it is TRUSTED_PROXY_COUNT - 1. Non-strict,
# so addresses a client wrote into the header itself (to the left) are skipped, never believed.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT > 0:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_ORDER = "left-most"
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
    IPWARE_STRICT = False
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# Content-Security-Policy (django-csp): scripts, styles and everything else from our own origin only — no
# inline script or style anywhere (templates use static/js/app.js and static/css/app.css; htmx's own
# indicator style is switched off in static/js/app.js and lives in app.css).
from csp.constants import NONE, SELF  # noqa: E402

INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# The debug page (and error e-mails) also mask passwords inside URL-valued settings and environment variables
# (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL ...).
DEFAULT_EXCEPTION_REPORTER_FILTER = "activation_manager.reporting.SecretsExceptionReporterFilter"

# --- Connections that warn before they break, sign-in with the platform, alerts ------------------------------
# (credentials/oauth.py, alerts/, docs/alerts.md) Kept in one block so it merges on its own.
INSTALLED_APPS += ["alerts"]

# Sign-in with the platform (OAuth). Each platform's app comes from its own variables, read by its adapter
# (PlatformAdapter.oauth_client): META_OAUTH_CLIENT_ID / META_OAUTH_CLIENT_SECRET, GOOGLE_OAUTH_CLIENT_ID /
# GOOGLE_OAUTH_CLIENT_SECRET (both Google platforms), LINKEDIN_OAUTH_CLIENT_ID / LINKEDIN_OAUTH_CLIENT_SECRET,
# TIKTOK_OAUTH_APP_ID / TIKTOK_OAUTH_SECRET. A platform without them offers pasted tokens only. Tests set
# OAUTH_CLIENTS (code -> (id, secret)). In demo mode the sandbox's apps are used.
OAUTH_CLIENTS: dict[str, tuple[str, str]] = {}
# Consent screens and token endpoints of the sandbox (demo mode always; tests that run the fakes); never production.
OAUTH_USE_SANDBOX = env.bool("OAUTH_USE_SANDBOX", default=False) and not PRODUCTION
# From "Continue with ..." to the account being picked: the state, the PKCE verifier and then the tokens wait in the
# session (encrypted) this long.
OAUTH_FLOW_SECONDS = env.int("OAUTH_FLOW_SECONDS", default=900)

# The app's public address: links in alerts, and the OAuth redirect URI when set (else built from the request).
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{env.int('WEB_PORT', default=8000)}").rstrip("/")

# Alert e-mail through Django's mail backend, configured by django-environ's EMAIL_URL: smtp+tls://user:pass@host:587,
# smtps://..., consolemail:// (the default, what `make run` uses: the worker prints the message), filemail:///path,
# memorymail:// (locmem).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Activation Manager <alerts@localhost>")
# A connection warns this many days before its token expires (the page, the dashboard and one alert each).
EXPIRY_WARNING_DAYS = (14, 7, 1)
# Alert deliveries: attempts per channel, and the first wait between them (doubling).
ALERT_DELIVERY_ATTEMPTS = env.int("ALERT_DELIVERY_ATTEMPTS", default=5)
ALERT_RETRY_SECONDS = env.int("ALERT_RETRY_SECONDS", default=30)
