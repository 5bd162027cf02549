"""Tell a newcomer where the app is and how to sign in; in demo mode, create a demo account and an operator once.

The demo account is a marketer (the product's pages). The operator is a superuser for the Django admin
(/admin/), which refuses the demo account: it is not staff. Each password is printed when the account is
created and saved, readable by this user only, in var/; later runs only say where to find it.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
OPERATOR_USERNAME = "operator"


class Command(BaseCommand):
    help = "Print the URL and how to sign in; in demo mode create a demo user and an operator on the first run."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url, **options):
        users = get_user_model().objects
        url = url if url.endswith("/") else f"{url}/"
        demo_file = settings.VAR_DIR / "demo-login.txt"
        operator_file = settings.VAR_DIR / "operator-login.txt"
        lines = [f"Activation Manager is starting at {url}"]
        if settings.DEMO_MODE and not users.filter(username=DEMO_USERNAME).exists() and not users.exists():
            password = _new_password()
            users.create_user(DEMO_USERNAME, password=password)
            _save_login(demo_file, DEMO_USERNAME, password)
            lines.append(f"Demo account created. Sign in as '{DEMO_USERNAME}' with password: {password}")
            lines.append(f"(saved in {_shown(demo_file)})")
        elif settings.DEMO_MODE and demo_file.exists():
            lines.append(f"Sign in with the demo account saved in {_shown(demo_file)}.")
        elif not users.exists():
            lines.append("No user yet: create one with  make admin  (or .venv/bin/python manage.py createsuperuser)")
        else:
            lines.append("Sign in with your account (new user: make admin).")

        # An operator for the Django admin, in demo mode only (a real installation makes its own with make admin).
        if settings.DEMO_MODE and not users.filter(is_superuser=True).exists():
            if users.filter(username=OPERATOR_USERNAME).exists():
                lines.append(f"No operator: the username '{OPERATOR_USERNAME}' is taken; create one with  make admin")
            else:
                password = _new_password()
                users.create_superuser(OPERATOR_USERNAME, email="", password=password)
                _save_login(operator_file, OPERATOR_USERNAME, password)
                lines.append(f"Operator account created for the admin at {url}admin/ : "
                             f"'{OPERATOR_USERNAME}' with password: {password}")
                lines.append(f"(saved in {_shown(operator_file)})")
        elif settings.DEMO_MODE and operator_file.exists():
            lines.append(f"Operators: the admin is at {url}admin/ (the operator account is saved in "
                         f"{_shown(operator_file)}).")
        else:
            lines.append(f"Operators: the admin is at {url}admin/ for staff accounts (make admin creates one).")

        if settings.DEMO_MODE:
            lines.append("Demo mode is on: platforms are local fakes; the connect forms show demo credentials.")
        width = max(len(line) for line in lines)
        self.stdout.write("=" * width)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write("=" * width)


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _save_login(path: Path, username: str, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # before the password is written, so it is never readable by others
    path.write_text(f"username: {username}\npassword: {password}\n")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)
