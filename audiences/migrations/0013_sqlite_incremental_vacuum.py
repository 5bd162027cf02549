"""SQLite only: switch the database file to incremental auto-vacuum, so that deleting an audience can give its pages
back to the file system (audiences.services.reclaim_space) instead of leaving them free inside the file.

SQLite changes auto_vacuum from NONE only by rebuilding the file (VACUUM), which cannot run inside a transaction:
this migration is not atomic. It runs once, while `migrate` has the file to itself; on a new database it takes a
moment, on an old one as long as copying the file. Nothing happens on PostgreSQL.
(https://www.sqlite.org/pragma.html#pragma_auto_vacuum: "changing from 'none' to 'full' or 'incremental' can only
occur when the database is new (no tables have yet been created) or by running the VACUUM command.")
"""

from django.db import migrations

INCREMENTAL = 2


def incremental_auto_vacuum(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum")
        if cursor.fetchone()[0] == INCREMENTAL:
            return
        if connection.in_atomic_block:  # VACUUM cannot run inside a transaction
            return
        cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
        cursor.execute("VACUUM")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audiences", "0012_platform_deletions")]

    operations = [migrations.RunPython(incremental_auto_vacuum, migrations.RunPython.noop, elidable=True)]
