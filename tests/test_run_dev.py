"""`make run`'s runner (scripts/run_dev.py): Ctrl-C stops every process cleanly and exits 0.

The first test starts the real Procfile.dev (runserver, a prefork Celery worker, beat, the sandbox) on free
ports with its own SQLite file and broker folder, then sends SIGINT to the runner's process group, as a
terminal's Ctrl-C does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "scripts" / "run_dev.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dev_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh `make run`, but nothing shared with this machine's own var/ or ports."""
    dropped = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "TESTING", "CELERY_TASK_ALWAYS_EAGER"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        ENV_FILE="",
        DEMO_MODE="true",
        CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL="",  # the filesystem broker in tmp_path: no other worker can take its tasks
        CELERY_BROKER_DIR=str(tmp_path / "broker"),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        WEB_PORT=str(_free_port()),
        FAKE_PLATFORMS_URL=f"http://127.0.0.1:{_free_port()}",
        GOOGLE_ADS_ENDPOINT=f"127.0.0.1:{_free_port()}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(args, *, env, log: Path) -> subprocess.Popen:
    # A session of its own, like a terminal's foreground job: SIGINT goes to the whole group.
    return subprocess.Popen([sys.executable, str(RUNNER), *args], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_until(predicate, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — loopback only
            return response.status == 200
    except OSError:
        return False


@pytest.mark.worker
def test_ctrl_c_stops_web_worker_beat_and_sandbox_cleanly_and_exits_0(tmp_path):
    env = _dev_env(tmp_path)
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    log = tmp_path / "run.log"
    runner = _start(["Procfile.dev"], env=env, log=log)
    try:
        web = f"http://127.0.0.1:{env['WEB_PORT']}/healthz"
        _wait_until(lambda: _answers(web), timeout=90, what="the web process", log=log)
        _wait_until(lambda: re.search(r"default@\S+ ready", log.read_text(errors="replace"))
                    and re.search(r"bulk@\S+ ready", log.read_text(errors="replace"))
                    and "Sandbox platforms: HTTP on" in log.read_text(errors="replace")
                    and "beat: Starting" in log.read_text(errors="replace"),
                    timeout=90, what="both workers, beat and the sandbox", log=log)
        started = time.monotonic()
        os.killpg(runner.pid, signal.SIGINT)
        returncode = runner.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    output = log.read_text(errors="replace")
    assert returncode == 0, output[-4000:]
    assert "worker: Warm shutdown" in output  # both workers: the default queue's and the bulk queue's
    assert re.search(r"default@\S+ ready", output) and re.search(r"bulk@\S+ ready", output)
    assert re.search(r"system +\| stopped$", output, re.M)
    for bad in ("ERROR", "Traceback", "killing", "SIGKILL", "exit code"):
        assert bad not in output, f"{bad!r} in the output:\n{output[-4000:]}"
    assert took < 30
    assert not _answers(web)


def test_a_process_that_ends_on_its_own_stops_the_others_and_its_exit_code_is_the_runners(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("sleeper: exec sleep 60\nfailing: sleep 0.5; exit 3\n")
    log = tmp_path / "run.log"
    runner = _start([str(procfile)], env=dict(os.environ), log=log)
    assert runner.wait(timeout=20) == 3
    assert "failing stopped (exit code 3)" in log.read_text()


def test_a_process_that_ignores_the_stop_is_killed_after_the_timeout_and_the_exit_code_says_so(tmp_path):
    procfile = tmp_path / "Procfile"
    stubborn = f"{sys.executable} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
               "print(\"up\", flush=True); time.sleep(60)'"
    procfile.write_text(f"stubborn: exec {stubborn}\n")
    log = tmp_path / "run.log"
    runner = _start([str(procfile), "--stop-timeout", "1"], env=dict(os.environ), log=log)
    _wait_until(lambda: "up" in log.read_text(), timeout=20, what="the process", log=log)
    os.killpg(runner.pid, signal.SIGINT)
    assert runner.wait(timeout=20) == 1
    output = log.read_text()
    assert "not stopped after 1 s: killing stubborn" in output
    assert "stubborn stopped (exit code -9)" in output
