"""An audience's first import writes its people straight into the audience's member rows while the file is still
being read, instead of staging them and copying them over at the end.

Why: a first import has nobody to compare its people with, and the copy at the end was one long statement that
overlapped nothing (about 7 s per million people, a quarter of the import; docs/performance.md). Written chunk by
chunk, the database does that work on its own core while the import's core parses the next chunk.

Until that import applies, its rows are nobody's members. An audience of generation 0 has no members (no import of
it ever succeeded), and nothing reads the member rows of such an audience: the sync plan plans nothing for it
(syncs.engine.plan.compute), the counts and coverage are taken when the import applies. The audience names the
import filling it (``Audience.filling_import``), and that settles the cases where two imports meet:

- Only the filling import writes straight in; another import of the same new audience, started meanwhile, stages
  its people as a re-import does.
- Whichever applies first wins, as it always did. A staged import applying first removes the filling import's rows
  (``make_room``). The filling import checks before each chunk that it still fills the audience (``check``,
  holding the audience row until the chunk commits, so no apply comes between the check and the write) and stops
  as discarded once it does not.
- A failed filling import's rows go (``forget``). Rows left by one whose worker died, or that was given up, go
  when the next import takes over filling (``take``).
- A filling import restarted on another worker (activation_manager.leases) reads the file again from the top over
  its own rows: a row only fills the keys its person lacks, the rule the chunks already merge by, so the same file
  in the same order gives the same people.
"""

from __future__ import annotations

from django.db import transaction

from audiences import storage
from audiences.models import Audience, ImportJob
from audiences.uploads import UnusableFile

AUDIENCE_DELETED = "The audience was deleted while this file was importing."
NEWER_IMPORT_WON = "A newer import of this audience finished first, so this one was discarded."


def take(job: ImportJob, audience: Audience) -> bool:
    """Whether ``job`` fills ``audience`` (call in the claim's transaction, the audience row locked; saves it)."""
    if audience.generation != 0:
        return False
    other = audience.filling_import_id
    if other == job.pk:
        return True  # restarted: its own rows stay, the file is read over them
    if other is not None and ImportJob.objects.filter(pk=other, status=ImportJob.Status.RUNNING).exists():
        return False
    storage.delete_members(audience.pk)  # left by an earlier filling import that failed or was given up
    audience.filling_import_id = job.pk
    audience.save(update_fields=["filling_import"])
    return True


def check(job_id: int, audience_id: int) -> None:
    """Before a chunk is written straight in, inside its transaction: raises UnusableFile when the audience no
    longer waits for this import (another import applied first, or it is being deleted). The audience row stays
    locked against updates until the chunk commits."""
    row = Audience.objects.select_for_update(no_key=True).filter(pk=audience_id).values_list(
        "status", "generation", "filling_import_id").first()
    if row is None or row[0] == Audience.Status.DELETING:
        raise UnusableFile(AUDIENCE_DELETED)
    if row[1] != 0 or row[2] != job_id:
        raise UnusableFile(NEWER_IMPORT_WON)


def make_room(audience: Audience) -> None:
    """A staged import applying to a new audience that another import is filling: the filler's rows go (in the
    apply's transaction, the audience row locked); the filler finds out at its next chunk."""
    if audience.generation == 0 and audience.filling_import_id is not None:
        storage.delete_members(audience.pk)


def forget(job: ImportJob) -> None:
    """A failed import: when it was filling its audience, the rows it wrote go."""
    with transaction.atomic():
        audience = Audience.objects.select_for_update().filter(pk=job.audience_id).first()
        if audience is None or audience.filling_import_id != job.pk:
            return
        if audience.generation == 0:
            storage.delete_members(audience.pk)
        audience.filling_import_id = None
        audience.save(update_fields=["filling_import"])
