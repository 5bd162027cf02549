"""Fixtures for the sync engine: audiences of synthetic members, connections, a scripted fake adapter."""

from __future__ import annotations

import pytest
import responses

from audiences.models import Audience, Member
from credentials.models import Connection
from platforms.adapters.base import (
    AudienceStatus,
    BatchResult,
    Capabilities,
    Operation,
    PlatformAdapter,
    RateLimit,
)
from platforms.forms import TikTokCredentialsForm
from platforms.matchkeys import fingerprint, prepare_records
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


def add_members(audience: Audience, start: int, count: int, *, generation: int | None = None) -> list[str]:
    """Members ``start``..``start+count`` (deterministic) in ``generation`` (default: the audience's)."""
    generation = audience.generation if generation is None else generation
    records = prepare_records(synthetic_rows(start, count), default_region="US")
    members = [Member(audience=audience, generation=generation, fingerprint=fingerprint(r.stored), keys=r.stored)
               for r in records]
    Member.objects.bulk_create(members, batch_size=2000)
    return [m.fingerprint for m in members]


def new_generation(audience: Audience, ranges: list[tuple[int, int]]) -> None:
    """Re-import: generation + 1 with the members of ``ranges`` ((start, count) pairs)."""
    generation = audience.generation + 1
    for start, count in ranges:
        add_members(audience, start, count, generation=generation)
    Member.objects.filter(audience=audience, generation__lt=generation).delete()
    audience.generation = generation
    audience.member_count = sum(c for _, c in ranges)
    audience.save()


def make_audience(owner, count: int, *, name="Loyal customers") -> Audience:
    audience = Audience.objects.create(owner=owner, name=name, default_country="US", status="ready", generation=1,
                                       member_count=count)
    add_members(audience, 0, count)
    return audience


class ScriptedAdapter(PlatformAdapter):
    """A fake adapter (registered as TikTok): keeps members by email, records every call, plays scripted errors.

    ``script`` maps an operation name to a list of exceptions (or None = succeed) consumed per call.
    """

    code = "tiktok"
    name = "TikTok"
    credentials_form = TikTokCredentialsForm
    account_field = "advertiser_id"
    batch_size = 10
    operations = frozenset({Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE})

    def __init__(self, credentials=None):
        super().__init__(credentials or {"advertiser_id": "adv-1"})
        self.calls: list[tuple[str, int, object]] = []
        self.audiences: dict[str, set[str]] = {}
        self.script: dict[str, list] = {}
        self.received: dict[str, list[str]] = {"add": [], "remove": [], "replace": []}

    @property
    def capabilities(self):
        return Capabilities(batch_size=self.batch_size, match_keys=("email", "phone"), operations=self.operations,
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

    def add_members(self, audience_id, batch, *, session=None):
        self._scripted("add")
        self.calls.append(("add", len(batch), session))
        emails = [m["email"] for m in batch]
        self.received["add"].extend(emails)
        self.audiences[audience_id].update(emails)
        return BatchResult(received=len(batch))

    def remove_members(self, audience_id, batch, *, session=None):
        self._scripted("remove")
        self.calls.append(("remove", len(batch), session))
        emails = [m["email"] for m in batch]
        self.received["remove"].extend(emails)
        self.audiences[audience_id].difference_update(emails)
        return BatchResult(received=len(batch))

    def replace_members(self, audience_id, batch, *, session):
        self._scripted("replace")
        self.calls.append(("replace", len(batch), session))
        emails = [m["email"] for m in batch]
        self.received["replace"].extend(emails)
        if session.batch_seq == 1:
            self.audiences[audience_id] = set()
        self.audiences[audience_id].update(emails)
        return BatchResult(received=len(batch))

    def status(self, audience_id):
        self._scripted("status")
        size = len(self.audiences.get(audience_id, ()))
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


def make_sync(owner, audience, connection, *, mode="add") -> Sync:
    return Sync.objects.create(owner=owner, audience=audience, connection=connection, mode=mode)


def new_run(sync: Sync) -> SyncRun:
    return SyncRun.objects.create(sync=sync)
