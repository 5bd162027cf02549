"""Tell a newcomer where the app is and how to sign in; in demo mode, create a demo account once."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Print the URL and how to sign in; in demo mode create a demo user on the first run."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url, **options):
        users = get_user_model().objects
        credentials_file = settings.VAR_DIR / "demo-login.txt"
        lines = [f"Activation Manager is starting at {url}"]
        if settings.DEMO_MODE and not users.filter(username=DEMO_USERNAME).exists() and not users.exists():
            password = secrets.token_urlsafe(12)
            users.create_user(DEMO_USERNAME, password=password)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            credentials_file.write_text(f"username: {DEMO_USERNAME}\npassword: {password}\n")
            credentials_file.chmod(0o600)
            lines.append(f"Demo account created. Sign in as '{DEMO_USERNAME}' with password: {password}")
            lines.append(f"(saved in {credentials_file.relative_to(settings.BASE_DIR)})")
        elif settings.DEMO_MODE and credentials_file.exists():
            lines.append(f"Sign in with the demo account saved in {credentials_file.relative_to(settings.BASE_DIR)}.")
        elif not users.exists():
            lines.append("No user yet: create one with  .venv/bin/python manage.py createsuperuser")
        else:
            lines.append("Sign in with your account (new user: .venv/bin/python manage.py createsuperuser).")
        if settings.DEMO_MODE:
            lines.append("Demo mode is on: platforms are local fakes; the connect forms show demo credentials.")
        width = max(len(line) for line in lines)
        self.stdout.write("=" * width)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write("=" * width)
