"""Syncs remember people: SyncMember holds (person, version) pairs instead of a copy of every key; the members,
and what each sync holds, are converted from the storage before person ids (audiences/0010 kept it as
LegacyMember / LegacySyncMember), keeping what the platforms hold in step:

- every member of an audience's current generation becomes a person (the person key: external id when the
  audience has them, else email); two old rows of one person keep the first one's values (the old storage had
  no file order, so "first" is the first stored);
- a sync's old row whose keys are exactly its person's current record holds that record; any other (an older
  record of the person, or a person who left) becomes a MemberVersion the sync still holds, so the next mirror
  run removes exactly its identifiers that no current member holds;
- stored hashes of the low-variety keys (first initial, state, birth date parts, gender) become the codes the new
  storage keeps (reversed by table; an unknown one is dropped);
- every sync plans its next run with the full comparison (confirmed_generation cleared), and runs planned before
  the upgrade (queued, running, failed) are cancelled: start a new one.
"""

import hashlib
import uuid

import django.db.models.deletion
from django.db import migrations, models

CHUNK = 5_000
DIGEST_KEYS = ("e", "eg", "eu", "p", "pd", "fn", "ln", "ct")
US_CA = ("al ak az ar ca co ct de dc fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh "
         "ok or pa ri sc sd tn tx ut vt va wa wv wi wy pr gu as vi mp aa ae ap ab bc mb nb nl ns nt nu on pe qc sk yt")


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _reverse_tables():
    letters = [chr(c) for c in range(0x61, 0x7B)] + [chr(c) for c in range(0xDF, 0x250) if chr(c).isalpha()]
    letters += [chr(c) for c in range(0x3B1, 0x3CA)] + [chr(c) for c in range(0x430, 0x460)]
    states = set(US_CA.split())
    try:
        import pycountry

        for subdivision in pycountry.subdivisions:
            name = "".join(ch for ch in subdivision.name.lower() if ch.isalpha())
            if name:
                states.add(name)
    except ImportError:  # pragma: no cover - pycountry is a dependency
        pass
    return {
        "fi": {_sha(c): c for c in letters if c == c.lower()},
        "st": {_sha(s): s for s in states},
        "g": {_sha("m"): "m", _sha("f"): "f"},
        "dy": {_sha(str(y)): str(y) for y in range(1900, 2101)},
        "dm": {_sha(f"{m:02d}"): f"{m:02d}" for m in range(1, 13)},
        "dd": {_sha(f"{d:02d}"): f"{d:02d}" for d in range(1, 32)},
    }


def convert(keys, tables):
    """Old Member.keys (hex digests, hashed codes) -> the new columns."""
    out = {}
    for key in DIGEST_KEYS:
        if keys.get(key):
            out[key] = bytes.fromhex(keys[key])
    if out.get("eu") is not None and out.get("eu") == out.get("eg"):
        del out["eu"]  # the new storage keeps UID2's form only where it differs from Google's
    for key in ("fi", "st", "g"):
        value = tables[key].get(keys.get(key) or "")
        if value is not None:
            out[key] = value
    parts = [tables[k].get(keys.get(k) or "") for k in ("dy", "dm", "dd")]
    if all(parts):
        out["dob"] = int("".join(parts))
    for key in ("z", "c", "x"):
        if keys.get(key):
            out[key] = keys[key]
    if keys.get("m"):
        try:
            out["m"] = uuid.UUID(keys["m"]).bytes
        except ValueError:
            pass
    return out


def person_of(record, person_key):
    order = ("x", "e", "p", "m") if person_key == "external_id" else ("e", "x", "p", "m")
    for key in order:
        value = record.get(key)
        if value is None:
            continue
        if key in ("e", "p"):
            return key.encode() + value[:11]
        text = value if isinstance(value, str) else str(uuid.UUID(bytes=value))
        return key.encode() + hashlib.sha256(text.encode()).digest()[:11]
    if "fn" in record and "ln" in record:
        parts = [record["fn"], record["ln"], str(record.get("z") or "").encode(), record.get("ct") or b"",
                 str(record.get("dob") or "").encode()]
        return b"n" + hashlib.sha256(b"\x1f".join(parts)).digest()[:11]
    return None


RECORD_FIELDS = ("e", "eg", "eu", "et", "p", "pd", "fn", "ln", "fng", "lng", "ct", "fi", "st", "dob", "g", "z", "zg",
                 "c", "x", "m")


def _record_of(row):
    return {key: (bytes(value) if isinstance(value, memoryview) else value)
            for key, value in zip(RECORD_FIELDS, row, strict=True) if value is not None}


def forwards(apps, schema_editor):
    Audience = apps.get_model("audiences", "Audience")
    LegacyMember = apps.get_model("audiences", "LegacyMember")
    Member = apps.get_model("audiences", "Member")
    MemberVersion = apps.get_model("audiences", "MemberVersion")
    Sync = apps.get_model("syncs", "Sync")
    LegacySyncMember = apps.get_model("syncs", "LegacySyncMember")
    SyncMember = apps.get_model("syncs", "SyncMember")
    SyncRun = apps.get_model("syncs", "SyncRun")
    tables = _reverse_tables()

    for audience in Audience.objects.all().iterator():
        current = LegacyMember.objects.filter(audience_id=audience.pk, generation=audience.generation)
        person_key = "external_id" if current.filter(keys__has_key="x").exists() else "email"
        count = 0
        batch = []
        for keys in current.order_by("id").values_list("keys", flat=True).iterator(chunk_size=CHUNK):
            record = convert(keys, tables)
            person = person_of(record, person_key)
            if person is None:
                continue
            batch.append(Member(audience_id=audience.pk, person=person, generation=audience.generation, **record))
            if len(batch) >= CHUNK:
                count += len(Member.objects.bulk_create(batch, ignore_conflicts=True))
                batch = []
        if batch:
            Member.objects.bulk_create(batch, ignore_conflicts=True)
        count = Member.objects.filter(audience_id=audience.pk).count()
        Audience.objects.filter(pk=audience.pk).update(person_key=person_key, member_count=count,
                                                       changes_recorded_from=None)

        for sync in Sync.objects.filter(audience_id=audience.pk):
            held = []
            legacy = LegacySyncMember.objects.filter(sync_id=sync.pk).order_by("id").values_list("keys", flat=True)
            for keys in legacy.iterator(chunk_size=CHUNK):
                record = convert(keys, tables)
                person = person_of(record, person_key)
                if person is None:
                    continue
                held.append((person, record))
                if len(held) >= CHUNK:
                    _hold(sync, audience, held, Member, MemberVersion, SyncMember)
                    held = []
            if held:
                _hold(sync, audience, held, Member, MemberVersion, SyncMember)
    Sync.objects.update(confirmed_generation=None)
    SyncRun.objects.filter(status__in=["queued", "running", "failed"]).update(
        status="cancelled", error_message="Stopped by the upgrade to person-based syncs; start a new run.")


def _hold(sync, audience, held, Member, MemberVersion, SyncMember):
    """SyncMember rows for a chunk of what the sync held: its person's current record, or a kept version."""
    persons = {person for person, _ in held}
    current = {bytes(row[0]): (row[1], _record_of(row[2:]))
               for row in Member.objects.filter(audience_id=audience.pk, person__in=list(persons))
               .values_list("person", "generation", *RECORD_FIELDS)}
    rows = []
    for person, record in held:
        mine = current.get(person)
        if mine is not None and mine[1] == record:
            rows.append(SyncMember(sync_id=sync.pk, person=person, generation=mine[0]))
            continue
        generation = None
        versions = MemberVersion.objects.filter(audience_id=audience.pk, person=person)
        for row in versions.values_list("generation", *RECORD_FIELDS):
            if _record_of(row[1:]) == record:
                generation = row[0]
                break
        if generation is None:
            lowest = versions.aggregate(low=models.Min("generation"))["low"]
            generation = min(lowest or 0, 0) - 1
            MemberVersion.objects.create(audience_id=audience.pk, person=person, generation=generation, **record)
        rows.append(SyncMember(sync_id=sync.pk, person=person, generation=generation))
    SyncMember.objects.bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('syncs', '0002_syncs_tables'),
        ('audiences', '0010_people'),
    ]

    operations = [
        migrations.AlterField(
            model_name='syncmember',
            name='sync',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='syncs.sync'),
        ),
        migrations.RenameModel(old_name='SyncMember', new_name='LegacySyncMember'),
        migrations.AlterField(
            model_name='sync',
            name='id',
            field=models.AutoField(primary_key=True, serialize=False),
        ),
        migrations.AddField(
            model_name='sync',
            name='hold_threshold',
            field=models.PositiveSmallIntegerField(default=20, help_text='Hold a run for review when it would remove more than this % of the people on the platform (0: never hold).'),
        ),
        migrations.AlterField(
            model_name='syncrun',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('partial', 'Partly failed'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('held', 'Held for review'), ('attention', 'Needs attention')], db_index=True, default='queued', max_length=16),
        ),
        migrations.AddField(model_name='syncrun', name='to_update', field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name='syncrun', name='unchanged', field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name='syncrun', name='held_before',
                            field=models.PositiveIntegerField(blank=True, null=True)),
        migrations.AddField(model_name='syncrun', name='hold_confirmed', field=models.BooleanField(default=False)),
        migrations.AddField(model_name='syncrun', name='kept', field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name='syncrun', name='size_before',
                            field=models.PositiveBigIntegerField(blank=True, null=True)),
        migrations.RemoveField(model_name='syncbatch', name='first_fingerprint'),
        migrations.RemoveField(model_name='syncbatch', name='last_fingerprint'),
        migrations.RemoveField(model_name='syncbatch', name='fingerprints'),
        migrations.AddField(model_name='syncbatch', name='persons', field=models.BinaryField(default=b'')),
        migrations.CreateModel(
            name='SyncMember',
            fields=[
                ('pk', models.CompositePrimaryKey('sync', 'person', 'generation', blank=True, editable=False, primary_key=True, serialize=False)),
                ('sync', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='confirmed_members', to='syncs.sync')),
                ('generation', models.IntegerField()),
                ('person', models.BinaryField(max_length=12)),
            ],
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
