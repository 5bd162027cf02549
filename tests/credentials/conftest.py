"""Fixtures for the connection tests: a scripted test adapter and the Meta fake through `responses`."""

from __future__ import annotations

import pytest
import responses

from credentials.models import Connection
from platforms.adapters.base import PlatformAdapter, ValidationResult
from platforms.adapters.tiktok import TikTokCredentialsForm
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from platforms.models import Platform
from sandbox.base import install_responses
from sandbox.meta import FakeMetaGraph
from tests.conftest import swap_adapter

META_BASE = "https://graph.test/meta"
# Distinctive secrets that must never appear in a page, a log line or an event.
GOOD_TOKEN = "good-tok-7Hq2ZpL9Xv4Kc8Wm0001"
APP_SECRET = "s3cr3t-APPSECRET-Zx9Qw8Ev7Rt6"


class ScriptedAdapter(PlatformAdapter):
    """A test adapter (registered for TikTok) whose validate_credentials answers by access token prefix."""

    code = "tiktok"
    name = "TikTok"
    credentials_form = TikTokCredentialsForm
    account_field = "advertiser_id"
    calls: list[dict] = []

    def validate_credentials(self) -> ValidationResult:
        type(self).calls.append(dict(self.credentials))
        token = str(self.credentials.get("access_token", ""))
        if token.startswith("good"):
            return ValidationResult(account_name=f"Advertiser {self.credentials.get('advertiser_id')}")
        if token.startswith("bad"):
            raise AuthError("TikTok: Access token is invalid or expired (40105).", code=40105)
        if token.startswith("perm"):
            raise PermanentError("TikTok: advertiser_id does not exist (40002).", code=40002)
        if token.startswith("down"):
            raise TransientError("TikTok answered HTTP 503.", code=503)
        if token.startswith("slow"):
            raise RateLimited("TikTok: too many requests (40100).", retry_after=5, code=40100)
        if token.startswith("echo"):
            raise AuthError(f"TikTok: token {token} rejected", code=40105)
        raise RuntimeError(f"unexpected failure while sending {token}")


@pytest.fixture
def scripted(settings):
    """TikTok's adapter replaced by ScriptedAdapter (through the registry, as the app looks it up)."""
    swap_adapter(settings, "tiktok", "tests.credentials.conftest.ScriptedAdapter")
    ScriptedAdapter.calls = []
    return ScriptedAdapter


@pytest.fixture
def tiktok(db):
    return Platform.objects.get(code="tiktok")


@pytest.fixture
def meta(db):
    return Platform.objects.get(code="meta")


def tiktok_form(token=GOOD_TOKEN, **overrides) -> dict:
    data = {"label": "Main advertiser", "app_id": "7000000000000000001", "app_secret": APP_SECRET,
            "access_token": token, "advertiser_id": "7100000000000000001"}
    data.update(overrides)
    return data


def tiktok_parts(token=GOOD_TOKEN, **overrides):
    """(label, config, secrets) as the form's split() gives them."""
    data = tiktok_form(token, **overrides)
    return (data.pop("label"), {"app_id": data.pop("app_id"), "advertiser_id": data.pop("advertiser_id")},
            data)


@pytest.fixture
def alice_tiktok(user, tiktok, scripted):
    from credentials import services

    label, config, secrets = tiktok_parts()
    return services.connect(owner=user, platform=tiktok, label=label, config=config, secrets=secrets)


@pytest.fixture
def meta_fake():
    return FakeMetaGraph()


@pytest.fixture
def meta_graph(meta_fake, settings):
    """The real Meta adapter talking to the fake Graph API, mounted with `responses`."""
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": META_BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, meta_fake, META_BASE)
        yield meta_fake


def reload(connection: Connection) -> Connection:
    return Connection.objects.get(pk=connection.pk)
