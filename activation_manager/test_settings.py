"""Settings for the test suite: the real settings, with fixed test keys and fast hashing, and no .env.

DATABASE_URL / REDIS_URL still come from the environment, so CI runs the suite against
PostgreSQL and Redis while a plain `make test` works on SQLite.
"""

import os
from pathlib import Path

# Never a developer's .env (see settings.ENV_FILE): tests get the same settings on every machine, and the
# processes they start (a Celery worker, `manage.py check --deploy`) inherit this.
os.environ["ENV_FILE"] = ""
os.environ.setdefault("TESTING", "true")
os.environ.setdefault("DEMO_MODE", "false")
# Two fixed keys so rotation can be tested; generated once with Fernet.generate_key().
os.environ.setdefault(
    "CREDENTIALS_KEYS",
    "ZmFrZS10ZXN0LWtleS0xLWZvci1hY3RpdmF0aW9uLW0=,ZmFrZS10ZXN0LWtleS0yLWZvci1hY3RpdmF0aW9uLW0=",
)

# Without Redis, tests get their own filesystem-broker folder, so a `make run` worker never takes their tasks.
os.environ.setdefault(
    "CELERY_BROKER_DIR", str(Path(__file__).resolve().parent.parent / "var" / f"test-broker-{os.getpid()}")
)

from activation_manager.settings import *  # noqa: E402,F403
from activation_manager.settings import DATABASES, VAR_DIR  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
UPLOAD_DIR = VAR_DIR / "test-uploads"
# On SQLite the test database is a file (one per test process), so a real worker process or a live
# server can open it too; PostgreSQL uses Django's usual test_<name> database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
