"""The test suite never reads a developer's .env; the real settings do (ENV_FILE, default BASE_DIR/.env)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRINT = "from django.conf import settings as s; print(s.SECRET_KEY, s.DEMO_MODE, s.DATABASES['default']['NAME'])"


def _settings_seen(module: str, env_file: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEMO_MODE", "SECRET_KEY"}}
    env.update(DJANGO_SETTINGS_MODULE=module, ENV_FILE=str(env_file), CREDENTIALS_KEYS="")
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", PRINT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split()


def _dotenv(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(f"SECRET_KEY=from-the-dotenv\nDEMO_MODE=true\nDATABASE_URL=sqlite:///{tmp_path}/dev.sqlite3\n")
    return path


def test_the_settings_of_make_run_read_the_env_file(tmp_path):
    assert _settings_seen("activation_manager.settings", _dotenv(tmp_path)) == [
        "from-the-dotenv", "True", f"{tmp_path}/dev.sqlite3"]


def test_the_test_settings_ignore_the_env_file_even_when_one_is_named(tmp_path):
    secret_key, demo_mode, database = _settings_seen("activation_manager.test_settings", _dotenv(tmp_path))
    assert secret_key != "from-the-dotenv" and demo_mode == "False" and "dev.sqlite3" not in database


def test_this_test_run_read_no_env_file(settings):
    assert os.environ["ENV_FILE"] == "" and settings.ENV_FILE == ""
