"""Connect an ad-platform account from the command line, exactly as the connect form does.

    python manage.py connect_platform --owner alice --platform meta --label "EU brand" \\
        --credentials-file meta.json [--json]

The file is a JSON object of the platform form's fields (``{"app_id": ..., "app_secret": ..., "access_token": ...,
"ad_account_id": ...}``), so no secret goes into the shell's history or the process list. The credentials go through
the platform's own form (the same checks as the page), are tested with the platform, stored encrypted and the event
recorded (``services.connect``). Exit status: 0 connected; 1 bad input (unknown user or platform, unreadable file,
a field the form refuses); 2 the platform refused the credentials (its message is printed). With ``--json`` the last
line is ``{"connection_id", "platform", "label", "status", "expires_at"}``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from credentials import services
from credentials.forms import credentials_form_for
from platforms.errors import UnknownPlatform
from platforms.models import Platform


class Command(BaseCommand):
    help = "Connect an ad-platform account for a user: tested with the platform first, then stored encrypted."

    def add_arguments(self, parser):
        parser.add_argument("--owner", required=True, help="The username the connection belongs to.")
        parser.add_argument("--platform", required=True, help="The platform's code (meta, google_dm, linkedin ...).")
        parser.add_argument("--label", required=True, help="Your name for this account.")
        parser.add_argument("--credentials-file", required=True, type=Path,
                            help="A JSON file with the platform form's fields (keeps secrets out of shell history).")
        parser.add_argument("--json", action="store_true", help="End with one JSON line describing the connection.")

    def handle(self, *args, **options):
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"No user called {options['owner']!r}.")
        code = options["platform"]
        platform = Platform.objects.filter(code=code, active=True).first()
        try:
            form_class = credentials_form_for(code)
        except UnknownPlatform:
            form_class = None
        if platform is None or form_class is None:
            known = ", ".join(Platform.objects.filter(active=True).order_by("code").values_list("code", flat=True))
            raise CommandError(f"Unknown platform {code!r}; known: {known}.")
        values = self._read(options["credentials_file"])
        form = form_class({**{k: self._form_value(v) for k, v in values.items()}, "label": options["label"]})
        if not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            raise CommandError(f"The credentials file does not fit the {platform.name} form — {problems}")
        label, config, secrets = form.split()
        try:
            connection = services.connect(owner=owner, platform=platform, label=label, config=config, secrets=secrets)
        except services.CredentialsRejected as exc:
            raise CommandError(exc.message, returncode=2) from None
        expires = connection.expires_at.isoformat() if connection.expires_at else None
        self.stdout.write(f"Connected {platform.name} · {connection.label} (connection {connection.pk})"
                          + (f"; its {connection.expiry_what or 'token'} {connection.expiry_text}." if expires
                             else "."))
        if options["json"]:
            self.stdout.write(json.dumps({"connection_id": connection.pk, "platform": platform.code,
                                          "label": connection.label, "status": connection.status,
                                          "expires_at": expires}))

    def _read(self, path: Path) -> dict:
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read the credentials file {path}: {exc.strerror}.") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            self.stderr.write(f"Warning: {path} is readable by other users; chmod 600 it.")
        try:
            values = json.loads(text)
        except ValueError:
            raise CommandError(f"The credentials file {path} is not JSON.") from None  # never echo its content
        if not isinstance(values, dict):
            raise CommandError("The credentials file must hold one JSON object: {\"field\": \"value\", ...}.")
        values.pop("label", None)  # --label names it
        return values

    @staticmethod
    def _form_value(value):
        if value is True:
            return "on"
        if value in (False, None):
            return ""
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
