"""Re-encrypt every stored connection secret under the first key of CREDENTIALS_KEYS.

Rotation: put the new key first in CREDENTIALS_KEYS (keep the old one after it), deploy, run this
command, then drop the old key. Safe to run again: tokens already under the newest key are skipped.
"""

from django.core.management.base import BaseCommand, CommandError

from credentials.services import rotate_keys


class Command(BaseCommand):
    help = "Re-encrypt every connection's secrets under the newest key (the first of CREDENTIALS_KEYS)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200, help="Rows per transaction (default 200).")

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = rotate_keys(batch_size=batch_size)
        meanwhile = report.changed_meanwhile
        self.stdout.write(
            f"Re-encrypted {report.rotated} connection(s); {report.already_current} already under the newest key"
            + (f"; {meanwhile} rewritten meanwhile (already current)" if meanwhile else "")
            + "."
        )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} connection(s) could not be decrypted with any configured key "
                f"(ids: {', '.join(map(str, report.failed))}). Add the key they were written with to CREDENTIALS_KEYS."
            )
