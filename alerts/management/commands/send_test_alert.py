"""Send a test alert through a user's channels: ``python manage.py send_test_alert --user alice``."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from alerts import services


class Command(BaseCommand):
    help = "Send one test alert through a user's alert channels (e-mail, webhook) and say what happened."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="The username.")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user called {options['user']!r}.")
        results = services.send_test(owner=user)
        if not results:
            raise CommandError("No alert channel is on for this user: turn on e-mail or a webhook first.")
        for result in results:
            line = f"{result.channel}: {'sent' if result.ok else 'not sent — ' + result.message}"
            self.stdout.write(self.style.SUCCESS(line) if result.ok else self.style.ERROR(line))
        if not all(result.ok for result in results):
            raise CommandError("At least one channel failed.", returncode=1)
