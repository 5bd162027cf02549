import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "correct-horse-battery")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "correct-horse-battery")


@pytest.fixture
def client_for(client):
    """Log the test client in as the given user."""

    def login(u):
        client.force_login(u)
        return client

    return login


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's private filesystem-broker folder (see test_settings)."""
    import shutil

    from django.conf import settings

    broker_dir = getattr(settings, "CELERY_BROKER_DIR", None)
    if broker_dir is not None and broker_dir.name.startswith("test-broker-"):
        shutil.rmtree(broker_dir, ignore_errors=True)


# Nothing in the suite may reach a real platform: unless a test points an adapter at a fake, every
# endpoint is a closed loopback port (connection refused at once).
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _no_real_platforms(settings):
    settings.PLATFORM_ENDPOINTS = {
        "meta": f"{CLOSED_PORT}/meta",
        "google_ads": "127.0.0.1:9",
        "google_dm": "127.0.0.1:9",
        "linkedin": f"{CLOSED_PORT}/linkedin/rest",
        "tiktok": f"{CLOSED_PORT}/tiktok/open_api/v1.3",
        "ttd": f"{CLOSED_PORT}/ttd/v3",
    }
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{CLOSED_PORT}/google-oauth/token"


def swap_adapter(settings, code: str, path: str) -> None:
    """Stand another adapter class (a dotted path, perhaps one that does not import) in for platform ``code``, as
    an operator would by editing PLATFORM_ADAPTERS."""
    from django.utils.module_loading import import_string

    paths = list(settings.PLATFORM_ADAPTERS)
    index = next(i for i, p in enumerate(paths) if import_string(p).code == code)
    paths[index] = path
    settings.PLATFORM_ADAPTERS = paths


@pytest.fixture(autouse=True)
def _platform_rows_after_flush(request):
    """Transactional tests start from a flushed database, which loses the Platform rows; put them back (as
    ``migrate`` does) so every test sees every platform."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or "live_server" in request.fixturenames
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from platforms.adapters.registry import sync_platforms

    sync_platforms()
