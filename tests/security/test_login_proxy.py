"""Behind a reverse proxy every request comes from the proxy's address: the lockout (username + address) must
use the client's address from X-Forwarded-For, as configured by TRUSTED_PROXY_COUNT, so failures from one
client never lock the account's owner out from another."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.test_settings_deploy import ROOT, _production_env

NAMES = ("AXES_IPWARE_META_PRECEDENCE_ORDER", "AXES_IPWARE_PROXY_ORDER", "AXES_IPWARE_PROXY_COUNT", "IPWARE_STRICT")
PROXY = "10.0.0.2"  # the reverse proxy: REMOTE_ADDR of every request
OWNER = "93.184.215.14"
ATTACKER = "93.184.215.99"


def production_settings(**env) -> dict:
    """The client-address settings that production derives from the environment (a real settings import)."""
    code = ("import json; from django.conf import settings as s; "
            f"print(json.dumps({{n: getattr(s, n, None) for n in {NAMES!r}}}))")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=_production_env(**env))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: value for name, value in values.items() if value is not None}


@pytest.fixture(scope="module")
def one_proxy():
    return production_settings(TRUSTED_PROXY_COUNT="1")


def login(client, password, *, forwarded_for):
    # The proxy appends the address it saw to whatever the client sent.
    return client.post("/accounts/login/", {"username": "alice", "password": password},
                       REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


@pytest.mark.django_db
def test_failures_from_one_client_behind_the_proxy_do_not_lock_the_owner_out(client, user, one_proxy):
    with override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5, **one_proxy):
        for _ in range(6):
            login(client, "wrong", forwarded_for=ATTACKER)
        assert login(client, "correct-horse-battery", forwarded_for=ATTACKER).status_code == 429
        # The owner, from another address behind the same proxy, still signs in.
        response = login(client, "correct-horse-battery", forwarded_for=OWNER)
        assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_a_client_cannot_pose_as_another_address_by_writing_the_header_itself(client, user, one_proxy):
    with override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5, **one_proxy):
        for _ in range(6):  # the attacker writes the owner's address; the proxy appends the attacker's
            login(client, "wrong", forwarded_for=f"{OWNER}, {ATTACKER}")
        assert login(client, "correct-horse-battery", forwarded_for=OWNER).status_code == 302


def test_without_a_proxy_the_header_is_ignored():
    values = production_settings()
    assert values.get("AXES_IPWARE_META_PRECEDENCE_ORDER") == ["REMOTE_ADDR"]


@pytest.mark.django_db
def test_without_a_proxy_a_forged_header_does_not_escape_the_lockout(client, user):
    with override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5, **production_settings()):
        for number in range(6):
            client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=ATTACKER,
                        HTTP_X_FORWARDED_FOR=f"93.184.216.{number}")
        response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"},
                               REMOTE_ADDR=ATTACKER)
        assert response.status_code == 429
