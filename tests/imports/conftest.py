import pytest

from audiences import imports
from audiences.models import Audience


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


@pytest.fixture
def audience(user):
    return Audience.objects.create(owner=user, name="Customers", default_country="US")


@pytest.fixture
def run_file(user, audience, tmp_path):
    """Upload ``content`` (bytes or str) and import it with the auto mapping (or ``mapping``); returns the job."""

    def run(content, *, mapping=None, target=None, name="upload.csv"):
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        job = imports.create_import_from_path(owner=user, audience=target or audience, path=path)
        if job.status == job.Status.FAILED:
            return job
        try:
            imports.start_import(job, mapping, enqueue=False)
        except imports.UnusableFile as exc:
            job.status, job.error_message = job.Status.FAILED, str(exc)
            return job
        return imports.run_import(job.pk)

    return run
