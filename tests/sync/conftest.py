"""Fixtures for the sync engine: audiences of synthetic members, connections, a scripted fake adapter."""

from __future__ import annotations

import pytest
import responses

from audiences.imports import import_records
from audiences.models import Audience
from credentials.models import Connection
from platforms.adapters.base import (
    AudienceStatus,
    BatchResult,
    Capabilities,
    Operation,
    PlatformAdapter,
    RateLimit,
)
from platforms.adapters.tiktok import TikTokAdapter, TikTokCredentialsForm
from platforms.matchkeys import person_id, person_order, prepare_records
from platforms.models import Platform
from platforms.ratelimit import RateLimiter
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.meta import FakeMetaGraph
from syncs.models import Sync, SyncRun

META_BASE = "https://graph.test/meta"


def synthetic_rows(start: int, count: int) -> list[dict]:
    return [
        {"email": f"person{i}@example.com", "phone": f"+1 212 555 {i % 10000:04d}", "first_name": f"Ann{i % 97}",
         "last_name": "Smith", "postal_code": "10001", "country": "US"}
        for i in range(start, start + count)
    ]


def synthetic_records(ranges: list[tuple[int, int]]) -> list[dict]:
    rows = [row for start, count in ranges for row in synthetic_rows(start, count)]
    return [r.stored for r in prepare_records(rows, default_region="US")]


def person_of(i: int) -> bytes:
    """The person id of synthetic member ``i`` (by email, the audiences' person key here)."""
    (record,) = synthetic_records([(i, 1)])
    return person_id(record, person_order("email"))


def new_generation(audience: Audience, ranges: list[tuple[int, int]]) -> None:
    """Re-import: the members of ``ranges`` ((start, count) pairs) become the membership, through the same
    apply step as a file import (joins, changes, leavers, kept versions, recorded changes)."""
    import_records(audience=audience, records=synthetic_records(ranges), person_key="email")


def make_audience(owner, count: int, *, name="Loyal customers") -> Audience:
    audience = Audience.objects.create(owner=owner, name=name, default_country="US", status="ready")
    new_generation(audience, [(0, count)])
    return audience


class ScriptedAdapter(PlatformAdapter):
    """A fake adapter (registered as TikTok): keeps members by email, records every call, plays scripted errors.

    ``script`` maps an operation name to a list of exceptions (or None = succeed) consumed per call.
    """

    code = "tiktok"
    name = "TikTok"
    credentials_form = TikTokCredentialsForm
    match_keys = TikTokAdapter.match_keys
    identifier_keys = TikTokAdapter.identifier_keys
    account_field = "advertiser_id"
    batch_size = 10
    operations = frozenset({Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE})

    def __init__(self, credentials=None):
        super().__init__(credentials or {"advertiser_id": "adv-1"})
        self.calls: list[tuple[str, int, object]] = []
        # audience id -> records held (frozensets of (key, value)); ``members(id)`` gives their emails.
        self.audiences: dict[str, set[frozenset]] = {}
        self.script: dict[str, list] = {}
        self.received: dict[str, list[str]] = {"add": [], "remove": [], "replace": []}

    @property
    def capabilities(self):
        return Capabilities(batch_size=self.batch_size, operations=self.operations,
                            rate_limit=RateLimit(requests=1000, per_seconds=1))

    def _scripted(self, op: str):
        queue = self.script.get(op) or []
        if queue:
            error = queue.pop(0)
            if error is not None:
                raise error

    def create_audience(self, name, description=""):
        self._scripted("create")
        audience_id = f"aud-{len(self.audiences) + 1}"
        self.audiences[audience_id] = set()
        self.calls.append(("create", 0, name))
        return audience_id

    def members(self, audience_id) -> set[str]:
        """The emails of the records the audience holds."""
        return {dict(record)["email"] for record in self.audiences[audience_id] if "email" in dict(record)}

    def add_members(self, audience_id, batch, *, session=None):
        self._scripted("add")
        self.calls.append(("add", len(batch), session))
        self.received["add"].extend(m.get("email") for m in batch)
        self.audiences[audience_id].update(frozenset(m.items()) for m in batch)
        return BatchResult(received=len(batch))

    def remove_members(self, audience_id, batch, *, session=None):
        """Like the platforms: every record matching any identifier sent goes."""
        self._scripted("remove")
        self.calls.append(("remove", len(batch), session))
        self.received["remove"].extend(m.get("email") for m in batch)
        sent = {pair for m in batch for pair in m.items()}
        self.audiences[audience_id] = {r for r in self.audiences[audience_id] if not (r & sent)}
        return BatchResult(received=len(batch))

    def replace_members(self, audience_id, batch, *, session):
        self._scripted("replace")
        self.calls.append(("replace", len(batch), session))
        self.received["replace"].extend(m.get("email") for m in batch)
        if session.batch_seq == 1:
            self.audiences[audience_id] = set()
        self.audiences[audience_id].update(frozenset(m.items()) for m in batch)
        return BatchResult(received=len(batch))

    def status(self, audience_id):
        self._scripted("status")
        size = len(self.members(audience_id)) if audience_id in self.audiences else 0
        return AudienceStatus(size=size, matched=size * 7 // 10, state="ready")


class ReplaceOnlyAdapter(ScriptedAdapter):
    """Like The Trade Desk: add and replace, no per-person removal."""

    operations = frozenset({Operation.CREATE, Operation.ADD, Operation.REPLACE, Operation.STATUS})


class Sleeps(list):
    """An injected sleep that records the waits instead of sleeping."""

    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def free_limiter():
    """A process-local limiter with a huge budget (rate limiting is tested on its own)."""
    return RateLimiter("test:free", RateLimit(requests=1_000_000, per_seconds=1), redis_url="")


@pytest.fixture
def tiktok_connection(user):
    platform = Platform.objects.get(code="tiktok")
    return Connection.objects.create(owner=user, platform=platform, label="Main", config={"advertiser_id": "adv-1"},
                                     secrets={"access_token": "tok-secret-123456"})


@pytest.fixture
def meta_connection(user):
    demo = DEMO_CREDENTIALS["meta"]
    platform = Platform.objects.get(code="meta")
    return Connection.objects.create(
        owner=user, platform=platform, label="Meta main",
        config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
        secrets={"app_secret": demo["app_secret"], "access_token": demo["access_token"]},
    )


@pytest.fixture
def meta_fake():
    return FakeMetaGraph()


@pytest.fixture
def meta_graph(meta_fake, settings):
    """The real Meta adapter talking to the fake Graph API through `responses`."""
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": META_BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, meta_fake, META_BASE)
        yield meta_fake


@pytest.fixture(autouse=True)
def _no_enqueue(monkeypatch):
    """Runs are executed by the tests themselves; nothing goes to a broker (worker tests undo this)."""
    queued: list[int] = []
    monkeypatch.setattr("syncs.runs.enqueue_run", queued.append)
    return queued


@pytest.fixture
def queued(_no_enqueue):
    return _no_enqueue


def make_sync(owner, audience, connection, *, mode="add", hold_threshold=0) -> Sync:
    """A sync as the engine tests want it: no hold for review unless a test asks (holds are tested on their own,
    in tests/sync/test_safety.py)."""
    return Sync.objects.create(owner=owner, audience=audience, connection=connection, mode=mode,
                               hold_threshold=hold_threshold)


def new_run(sync: Sync) -> SyncRun:
    return SyncRun.objects.create(sync=sync)
