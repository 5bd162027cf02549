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
