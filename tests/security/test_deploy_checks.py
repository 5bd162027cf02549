"""`manage.py check --deploy` fails when the credentials keys are missing or invalid."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tests.test_settings_deploy import _manage, _production_env


def env_with_keys(keys: str) -> dict:
    env = _production_env()
    env["CREDENTIALS_KEYS"] = keys
    return env


@pytest.mark.parametrize("keys", ["", " ", "not-a-fernet-key", "c2hvcnQ="])
def test_check_deploy_fails_without_a_valid_credentials_key(keys):
    result = _manage("check", "--deploy", env=env_with_keys(keys))
    assert result.returncode != 0
    assert "activation_manager.E00" in result.stderr
    assert keys.strip() == "" or keys not in result.stderr  # a key is never printed


def test_check_deploy_flags_an_invalid_entry_next_to_a_valid_key():
    good = Fernet.generate_key().decode()
    result = _manage("check", "--deploy", env=env_with_keys(f"{good},oops-old-key"))
    assert result.returncode != 0
    assert "activation_manager.E002" in result.stderr and "entry 2 of 2" in result.stderr
    assert good not in result.stderr + result.stdout


def test_the_check_is_silent_with_valid_keys():
    from django.test import override_settings

    from activation_manager.checks import credentials_keys_check

    with override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode(), Fernet.generate_key().decode()]):
        assert credentials_keys_check() == []
    with override_settings(CREDENTIALS_KEYS=[]):
        assert [e.id for e in credentials_keys_check()] == ["activation_manager.E001"]
