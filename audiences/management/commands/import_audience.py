"""Import a CSV file from the shell, into a new audience or (``--audience``) an existing one: the same code path as
the web import, the audience's remembered mapping and person key included."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audiences import imports, selectors, sniffing
from audiences.forms import country_choices
from audiences.models import Audience, ImportJob
from platforms import matchkeys

EXIT_UNUSABLE = 2


class Command(BaseCommand):
    help = ("Import a customer CSV into a new audience (--owner, --name) or re-import one (--audience): prints the "
            "counts and the first rejections.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file (UTF-8, UTF-16, Windows-1252 / Latin-1 ...; comma, semicolon, tab)")
        parser.add_argument("--owner", help="username of the audience's owner (required for a new audience)")
        parser.add_argument("--name", help="name of the new audience")
        parser.add_argument("--audience", type=int, metavar="ID",
                            help="re-import into this existing audience: its members are replaced; its last "
                                 "mapping and person key apply unless --map / --person-key say otherwise")
        parser.add_argument("--country", default=None,
                            help="default ISO country for phones and addresses (required unless the file has a "
                                 "country column for every row; never assumed)")
        parser.add_argument("--map", action="append", default=[], metavar="COLUMN=KEY",
                            help=f"map a column header to a match key ({', '.join(imports.MAPPING_KEYS)}) or to "
                                 "'ignore'; repeatable; other columns keep the remembered or automatic mapping")
        parser.add_argument("--person-key", choices=matchkeys.PERSON_KEYS, default=None,
                            help="which key says who a member is across imports (default: the audience's, else "
                                 "the external id column, else email, else phone, else mobile advertiser id)")
        parser.add_argument("--encoding", default=None,
                            help="read the file in this encoding instead of the detected one (one of "
                                 f"{', '.join(name for name, _ in sniffing.ENCODING_CHOICES)})")
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            self._unusable(options, f"{path}: no such file")
        encoding = None
        if options["encoding"]:
            try:
                encoding = sniffing.canonical_encoding(options["encoding"])
            except ValueError as exc:
                raise CommandError(f"--encoding: {exc}") from None
        country = (options["country"] or "").strip().upper()
        if country and country not in {code for code, _ in country_choices() if code}:
            raise CommandError(f"--country {options['country']!r} is not an ISO 3166-1 alpha-2 country code")
        overrides = self._overrides(options["map"])

        audience, created = self._audience(options, country)
        job = imports.create_import_from_path(owner=audience.owner, audience=audience, path=path, encoding=encoding)
        if job.status == ImportJob.Status.FAILED:
            self._discard(audience, created)
            self._unusable(options, job.error_message)
        try:
            mapping = self._mapping(job, overrides)
        except CommandError:
            imports.delete_upload(job)
            self._discard(audience, created)
            raise
        person_key = options["person_key"]
        try:
            if person_key:
                imports.clean_person_key(mapping, person_key)
            imports.start_import(job, mapping, enqueue=False, person_key=person_key)
        except (ValueError, imports.UnusableFile) as exc:
            imports.delete_upload(job)
            self._discard(audience, created)
            self._unusable(options, str(exc))
        self._warn(job, mapping)
        job = imports.run_import(job.pk)
        if job.status != ImportJob.Status.SUCCEEDED:
            if created and not Audience.objects.get(pk=audience.pk).generation:
                audience.delete()
            self._unusable(options, job.error_message)
        self._report(job, options)

    def _overrides(self, items) -> dict[str, str]:
        overrides = {}
        for item in items:
            column, sep, key = item.partition("=")
            key = key.strip()
            if not sep or not column.strip():
                raise CommandError(f"--map {item!r}: expected COLUMN=KEY")
            if key not in imports.MAPPING_KEYS and key not in ("ignore", ""):
                raise CommandError(f"--map {item!r}: unknown key {key!r} (one of {', '.join(imports.MAPPING_KEYS)})")
            overrides[column.strip()] = "" if key == "ignore" else key
        return overrides

    def _audience(self, options, country) -> tuple[Audience, bool]:
        """(the audience, whether this command created it)."""
        users = get_user_model()
        owner = None
        if options["owner"]:
            try:
                owner = users.objects.get(username=options["owner"])
            except users.DoesNotExist:
                raise CommandError(f"no user named {options['owner']!r}") from None
        if options["audience"] is not None:
            audience = Audience.objects.visible().filter(pk=options["audience"]).first()
            if audience is None or (owner is not None and audience.owner_id != owner.pk):
                raise CommandError(f"no audience {options['audience']}" + (f" of {owner.username}" if owner else ""))
            if audience.imports.filter(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]).exists():
                raise CommandError(f"an import into audience {audience.pk} is still running; wait for it to finish")
            if country and country != audience.default_country:
                audience.default_country = country
                audience.save(update_fields=["default_country", "updated_at"])
            return audience, False
        if owner is None or not options["name"]:
            raise CommandError("a new audience needs --owner and --name (or give --audience ID to re-import)")
        return Audience.objects.create(owner=owner, name=options["name"], default_country=country), True

    def _mapping(self, job, overrides) -> dict[str, str]:
        mapping = dict(job.column_mapping)
        headers = [h.lower() for h in job.headers]
        for column, key in overrides.items():
            if column.lower() not in headers:
                raise CommandError(f"--map: the file has no column {column!r} (columns: {', '.join(job.headers)})")
            index = str(headers.index(column.lower()))
            if key:  # a key moved by hand leaves the column it was auto-mapped to (its hashed form too)
                base = imports.hashed.base_key(key)
                mapping = {i: ("" if imports.hashed.base_key(k) == base and k else k) for i, k in mapping.items()}
            mapping[index] = key
        return mapping

    def _warn(self, job, mapping):
        """What the mapping page would warn about: a change of person key, remembered columns now missing."""
        person_key = job.person_key or job.audience.person_key or imports.default_person_key(mapping)
        notes = selectors.mapping_notes(job=job, headers=job.headers, mapping=mapping, person_key=person_key,
                                        platform_codes=[])
        if notes.reidentify:
            self.stderr.write(f"warning: the person key changes from {notes.previous_person_key} to "
                              f"{matchkeys.PERSON_KEY_LABELS[person_key]}: all {notes.reidentify:,} members are "
                              "re-identified (each sync sends the whole audience again)")
        for missing in notes.missing:
            self.stderr.write(f"warning: column {missing.header!r} ({missing.key}) {missing.why}: "
                              f"{missing.members:,} members lose it")

    @staticmethod
    def _discard(audience, created):
        if created:
            audience.delete()

    def _report(self, job, options):
        out = self.stdout
        mapped = ", ".join(f"{imports.column_label(job.headers, int(i))} → {k}" for i, k in
                           job.column_mapping.items() if k)
        out.write(f"Audience {job.audience_id} “{job.audience.name}”: {job.encoding_label}, "
                  f"{imports.DELIMITER_LABELS.get(job.delimiter, job.delimiter)}-separated; {mapped}; "
                  f"person key {job.person_key}")
        out.write(f"{job.rows_total} rows: {job.rows_imported} imported, {job.rows_rejected} rejected, "
                  f"{job.rows_duplicate} duplicates")
        if job.rejections_by_reason:
            out.write("Rejected rows by reason:")
        for reason, count in job.rejections_by_reason.items():
            out.write(f"  {count:>8}  {reason}")
        dropped = imports.dropped_by_reason(job)
        if dropped:
            out.write("Values dropped, by column and reason:")
            for reason, count in dropped.items():
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
