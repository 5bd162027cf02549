import pytest

from tests.support.network import Network


@pytest.fixture
def network(monkeypatch):
    """Name lookups and connects replaced by a recorder that refuses everything but registered loopback
    test servers (tests/support/network.py): nothing these tests do can reach another address."""
    return Network().install(monkeypatch)
