"""`manage.py first_run` (run by `make run`): in demo mode a demo marketer and an operator for the admin,
each created once, its password printed once and saved for this user only."""

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings, tmp_path):
    settings.DEMO_MODE = True
    settings.VAR_DIR = tmp_path
    return tmp_path


def first_run() -> str:
    out = StringIO()
    call_command("first_run", "--url", "http://127.0.0.1:8010/", stdout=out)
    return out.getvalue()


def _password(output: str, username: str) -> str:
    return re.search(rf"'{username}' with password: (\S+)", output).group(1)


def test_first_run_creates_a_demo_user_and_an_operator_and_prints_each_password_once(demo, client):
    output = first_run()
    demo_password, operator_password = _password(output, "demo"), _password(output, "operator")
    assert "http://127.0.0.1:8010/admin/" in output
    users = get_user_model().objects
    assert not users.get(username="demo").is_staff
    operator = users.get(username="operator")
    assert operator.is_staff and operator.is_superuser
    for name, password in (("demo", demo_password), ("operator", operator_password)):
        saved = demo / f"{name}-login.txt"
        assert saved.read_text() == f"username: {name}\npassword: {password}\n"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    again = first_run()
    assert demo_password not in again and operator_password not in again
    assert "operator-login.txt" in again and users.count() == 2

    # The operator gets into the admin through its sign-in form; the demo user is refused there.
    login = reverse("admin:login") + "?next=" + reverse("admin:index")
    refused = client.post(login, {"username": "demo", "password": demo_password, "next": reverse("admin:index")})
    assert refused.status_code == 200 and "staff account" in refused.content.decode()
    admitted = client.post(login, {"username": "operator", "password": operator_password,
                                   "next": reverse("admin:index")}, follow=True)
    assert admitted.redirect_chain[-1][0] == reverse("admin:index")
    assert "Site administration" in admitted.content.decode()


def test_a_machine_that_ran_before_gets_its_operator_on_the_next_run(demo):
    get_user_model().objects.create_user("demo", password="x-long-enough-1")
    output = first_run()
    assert _password(output, "operator")
    assert get_user_model().objects.filter(username="operator", is_superuser=True).exists()


def test_no_operator_is_made_outside_demo_mode_or_when_one_exists(settings, tmp_path):
    settings.DEMO_MODE = False
    settings.VAR_DIR = tmp_path
    output = first_run()
    assert "make admin" in output and not get_user_model().objects.exists()
    settings.DEMO_MODE = True
    get_user_model().objects.create_superuser("ops", password="x-long-enough-1")
    output = first_run()
    assert "password:" not in output.replace("'demo' with password", "")
    assert not get_user_model().objects.filter(username="operator").exists()
