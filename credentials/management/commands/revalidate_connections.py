"""Re-validate connections now, in this process (what the daily beat task does through workers)."""

from django.core.management.base import BaseCommand, CommandError

from credentials.services import revalidate_all, revalidate_connection


class Command(BaseCommand):
    help = "Check every active and failing connection with its platform (or one, with --connection ID)."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, metavar="ID", help="Only this connection.")

    def handle(self, *args, connection=None, **options):
        if connection is not None:
            outcomes = [revalidate_connection(connection_id=connection)]
            if outcomes[0].result == "missing":
                raise CommandError(f"No connection with id {connection}.")
        else:
            outcomes = revalidate_all()
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
            self.stdout.write(f"connection {outcome.connection_id}: {outcome.result}"
                              + (f" — {outcome.message}" if outcome.message else ""))
        summary = ", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "nothing to check"
        self.stdout.write(f"Checked {len(outcomes)} connection(s): {summary}.")
