"""Import a CSV file into a new audience from the shell (same code path as the web import)."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audiences import imports
from audiences.forms import country_choices
from audiences.models import Audience, ImportJob
from platforms import matchkeys

EXIT_UNUSABLE = 2


class Command(BaseCommand):
    help = "Import a customer CSV into a new audience: prints the counts and the first rejections."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file (UTF-8, UTF-16 or Latin-1; comma, semicolon or tab)")
        parser.add_argument("--owner", required=True, help="username of the audience's owner")
        parser.add_argument("--name", required=True, help="name of the new audience")
        parser.add_argument("--country", default=None,
                            help="default ISO country for phones and addresses (required unless the file has a "
                                 "country column for every row; never assumed)")
        parser.add_argument("--map", action="append", default=[], metavar="COLUMN=KEY",
                            help=f"map a column header to a match key ({', '.join(matchkeys.KEYS)}) or to "
                                 "'ignore'; repeatable; other columns keep the automatic mapping")
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            self._unusable(options, f"{path}: no such file")
        try:
            owner = get_user_model().objects.get(username=options["owner"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {options['owner']!r}") from None
        country = (options["country"] or "").strip().upper()
        if country and country not in {code for code, _ in country_choices() if code}:
            raise CommandError(f"--country {options['country']!r} is not an ISO 3166-1 alpha-2 country code")
        overrides = {}
        for item in options["map"]:
            column, sep, key = item.partition("=")
            key = key.strip()
            if not sep or not column.strip():
                raise CommandError(f"--map {item!r}: expected COLUMN=KEY")
            if key not in matchkeys.KEYS and key not in ("ignore", ""):
                raise CommandError(f"--map {item!r}: unknown key {key!r} (one of {', '.join(matchkeys.KEYS)})")
            overrides[column.strip()] = "" if key == "ignore" else key

        audience = Audience.objects.create(owner=owner, name=options["name"], default_country=country)
        job = imports.create_import_from_path(owner=owner, audience=audience, path=path)
        if job.status == ImportJob.Status.FAILED:
            audience.delete()
            self._unusable(options, job.error_message)
        mapping = dict(job.column_mapping)
        headers = [h.lower() for h in job.headers]
        for column, key in overrides.items():
            if column.lower() not in headers:
                imports.delete_upload(job)
                audience.delete()
                raise CommandError(f"--map: the file has no column {column!r} (columns: {', '.join(job.headers)})")
            index = str(headers.index(column.lower()))
            if key:  # a key moved by hand leaves the column it was auto-mapped to
                mapping = {i: ("" if k == key else k) for i, k in mapping.items()}
            mapping[index] = key
        try:
            imports.start_import(job, mapping, enqueue=False)
        except (ValueError, imports.UnusableFile) as exc:
            imports.delete_upload(job)
            audience.delete()
            self._unusable(options, str(exc))
        job = imports.run_import(job.pk)
        if job.status != ImportJob.Status.SUCCEEDED:
            if not Audience.objects.get(pk=audience.pk).generation:
                audience.delete()
            self._unusable(options, job.error_message)
        self._report(job, options)

    def _report(self, job, options):
        out = self.stdout
        mapped = ", ".join(f"{imports.column_label(job.headers, int(i))} → {k}" for i, k in
                           job.column_mapping.items() if k)
        out.write(f"Audience {job.audience_id} “{job.audience.name}”: {job.encoding}, "
                  f"{imports.DELIMITER_LABELS.get(job.delimiter, job.delimiter)}-separated; {mapped}")
        out.write(f"{job.rows_total} rows: {job.rows_imported} imported, {job.rows_rejected} rejected, "
                  f"{job.rows_duplicate} duplicates")
        for reason, count in job.rejections_by_reason.items():
            out.write(f"  {count:>8}  {reason}")
        first = list(job.rejected_rows.all()[:10])
        if first:
            out.write("First rejected rows:")
            for row in first:
                out.write(f"  row {row.row_number}{', ' + row.column if row.column else ''}: {row.reason}")
        if options["json"]:
            out.write(json.dumps(imports.summary(job)))

    def _unusable(self, options, message):
        self.stderr.write(f"error: {message}")
        if options["json"]:
            self.stdout.write(json.dumps({"error": message}))
        raise SystemExit(EXIT_UNUSABLE)
