import pytest

from sandbox.base import FakePlatform, FakeRequest, FakeResponse, FakeServer


class WebhookReceiver(FakePlatform):
    """A loopback stand-in for a Slack incoming webhook: records what it receives, answers "ok" (or a scripted
    status)."""

    prefix = "/hooks"

    def __init__(self):
        super().__init__()
        self.statuses: list[int] = []

    def handle(self, request: FakeRequest) -> FakeResponse:
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Location": "http://169.254.169.254/latest/"} if 300 <= status < 400 else {}
        return FakeResponse(status, "ok" if status == 200 else "no_service", headers=headers)


@pytest.fixture
def receiver(settings):
    """The receiver on loopback, allowed through the egress guard as the sandbox is (its exact host and port)."""
    fake = WebhookReceiver()
    with FakeServer([fake]) as server:
        settings.FAKE_PLATFORMS_URL = server.url
        settings.EGRESS_ALLOW_SANDBOX = True
        fake.url = f"{server.url}/hooks/services/T000/B000/XXXX"
        yield fake
