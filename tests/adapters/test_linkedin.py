"""LinkedIn adapter through its public interface, against the fake Marketing API (responses and loopback)."""

from __future__ import annotations

import hashlib
import json

import pytest
import responses
from django.test import override_settings

from platforms import matchkeys
from platforms.adapters import get_adapter_class, linkedin
from platforms.adapters.base import Operation
from platforms.adapters.linkedin import BATCH_SIZE, LINKEDIN_VERSION
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from sandbox.base import FakeServer, Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.linkedin import FakeLinkedIn

HOST = "https://api.linkedin.test/linkedin"
BASE = HOST + "/rest"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["linkedin"].items() if k != "label"}
ACCOUNT = CREDS["ad_account_id"]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int) -> dict:
    return {"email": sha(f"user{n}@example.com"), "maid": f"6d92078a-8246-4ba4-ae5b-76104861{n:04d}"}


@pytest.fixture
def li_fake():
    return FakeLinkedIn()


@pytest.fixture
def li(li_fake, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "linkedin": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, li_fake, HOST)
        yield li_fake


def adapter(**overrides):
    return get_adapter_class("linkedin")({**CREDS, **overrides})


def test_registry_gives_the_linkedin_adapter_with_truthful_capabilities():
    cls = get_adapter_class("linkedin")
    caps = cls.capabilities
    assert cls.code == "linkedin" and cls.account_field == "ad_account_id"
    assert tuple(key for key, _ in linkedin.ID_TYPES) == ("email", "maid")
    assert {key for key, _ in linkedin.ID_TYPES} == set(matchkeys.accepted_keys("linkedin"))
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}
    assert Operation.REPLACE not in caps.operations
    assert caps.batch_size == BATCH_SIZE == 5_000
    assert caps.min_audience_size == 300
    assert caps.rate_limit.per_seconds == 60


def test_credentials_form_keeps_secrets_apart_and_explains_where_to_find_them():
    form_class = get_adapter_class("linkedin").credentials_form
    assert set(form_class.secret_fields) == {"client_secret", "access_token"}
    assert len(form_class.help_steps) >= 3
    form = form_class(data={**DEMO_CREDENTIALS["linkedin"], "ad_account_id": "urn:li:sponsoredAccount:508123456"})
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    assert config["ad_account_id"] == "508123456"
    assert set(secrets) == {"client_secret", "access_token"} and "access_token" not in config


def test_full_cycle_sends_the_exact_requests(li):
    li_adapter = adapter()
    batch = [member(i) for i in range(3)] + [{"email": sha("only-email@example.com")}]

    result = li_adapter.validate_credentials()
    assert result.account_name == "Demo ad account"
    assert result.details["status"] == "ACTIVE" and result.details["api_version"] == LINKEDIN_VERSION

    segment_id = li_adapter.create_audience("VIP buyers", "Bought twice this year")
    before = li_adapter.status(segment_id)
    assert before.state == "building" and before.matched is None

    added = li_adapter.add_members(segment_id, batch)
    assert (added.received, added.invalid) == (4, 0)
    expected = {("SHA256_EMAIL", m["email"]) for m in batch} | {("GOOGLE_AID", m["maid"]) for m in batch[:3]}
    assert li.audience_members(segment_id) == expected

    status = li_adapter.status(segment_id)
    assert status.state == "ready"
    assert status.matched == li.matched_count(segment_id)
    assert status.raw["inputCount"] == li.people_count(segment_id) == 4  # people, not identifiers
    assert status.size == 0  # below LinkedIn's 300 matched members there is no audience to show

    removed = li_adapter.remove_members(segment_id, batch[:1])
    assert (removed.received, removed.invalid) == (1, 0)
    assert li.audience_members(segment_id) == expected - {("SHA256_EMAIL", batch[0]["email"]),
                                                          ("GOOGLE_AID", batch[0]["maid"])}

    li_adapter.delete_audience(segment_id)
    assert segment_id not in li.segments

    reqs = li.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("GET", f"/rest/adAccounts/{ACCOUNT}"),
        ("POST", "/rest/dmpSegments"),
        ("GET", f"/rest/dmpSegments/{segment_id}"),
        ("POST", f"/rest/dmpSegments/{segment_id}/users"),
        ("GET", f"/rest/dmpSegments/{segment_id}"),
        ("POST", f"/rest/dmpSegments/{segment_id}/users"),
        ("DELETE", f"/rest/dmpSegments/{segment_id}"),
    ]
    for request in reqs:
        assert request.headers["authorization"] == f"Bearer {CREDS['access_token']}"
        assert request.headers["linkedin-version"] == LINKEDIN_VERSION
        assert request.headers["x-restli-protocol-version"] == "2.0.0"
    assert json.loads(reqs[1].body) == {
        "name": "VIP buyers",
        "description": "Bought twice this year",  # "description string (optional)" on LinkedIn's DMP segment page
        "sourcePlatform": "ACTIVATION_MANAGER",
        "account": f"urn:li:sponsoredAccount:{ACCOUNT}",
        "accessPolicy": "PRIVATE",
        "type": "USER",
        "destinations": [{"destination": "LINKEDIN"}],
    }
    assert reqs[3].headers["x-restli-method"] == "BATCH_CREATE"
    assert json.loads(reqs[3].body) == {"elements": [
        {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": m["email"]},
                                      {"idType": "GOOGLE_AID", "idValue": m["maid"]}]} for m in batch[:3]
    ] + [{"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": batch[3]["email"]}]}]}
    assert json.loads(reqs[5].body) == {"elements": [
        {"action": "REMOVE", "userIds": [{"idType": "SHA256_EMAIL", "idValue": batch[0]["email"]},
                                         {"idType": "GOOGLE_AID", "idValue": batch[0]["maid"]}]}
    ]}
    assert li.add_requests == 1 and li.remove_requests == 1 and li.users_received == 5


def test_values_are_the_matchkeys_sha256_of_the_normalized_email(li):
    prepared = matchkeys.prepare_record({"email": "  Alice@Example.COM "}, default_region="US")
    values = matchkeys.platform_values("linkedin", prepared.stored)
    assert values == {"email": sha("alice@example.com")}
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("One")
    li_adapter.add_members(segment_id, [values])
    assert li.audience_members(segment_id) == {("SHA256_EMAIL", sha("alice@example.com"))}


def test_status_reports_audience_size_and_match_rate_once_past_300_matched(li):
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("Big")
    li_adapter.add_members(segment_id, [{"email": sha(f"p{i}@example.com")} for i in range(1_000)])
    status = li_adapter.status(segment_id)
    matched = li.matched_count(segment_id)
    assert 500 < matched < 750  # the fake matches ~62% deterministically
    assert status.size == status.matched == matched
    assert status.match_rate == pytest.approx(matched / 1_000)
    assert status.raw["usable"] is True


def test_people_without_a_linkedin_key_are_counted_invalid_and_not_sent(li):
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("Mixed")
    result = li_adapter.add_members(segment_id, [member(1), {"phone": sha("+15550001")}, {}])
    assert (result.received, result.invalid) == (3, 2)
    assert "2 of 3" in result.messages[0]
    sent = json.loads(li.requests[-1].body)["elements"]
    assert len(sent) == 1


def test_a_batch_of_nobody_usable_sends_nothing(li):
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("Empty")
    count = len(li.requests)
    result = li_adapter.add_members(segment_id, [{}, {}])
    assert (result.received, result.invalid) == (2, 2)
    assert len(li.requests) == count


def test_elements_linkedin_refuses_are_counted_invalid(li):
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("Bad hash")
    result = li_adapter.add_members(segment_id, [member(1), {"email": "NOT-A-HASH"}])
    assert (result.received, result.invalid) == (2, 1)
    assert any("not a valid SHA256_EMAIL" in message for message in result.messages)


def test_more_than_the_batch_size_is_refused_before_sending(li):
    with pytest.raises(PermanentError, match="at most 5,000"):
        adapter().add_members("1", [member(1)] * (BATCH_SIZE + 1))
    assert li.requests == []


# Typed errors ---------------------------------------------------------------------------
def test_expired_token_is_an_auth_error_that_mentions_the_60_days(li):
    with pytest.raises(AuthError, match="expired") as info:
        adapter(access_token=EXPIRED_TOKEN).validate_credentials()
    assert info.value.code == 401
    assert "60 days" in info.value.message and "serviceErrorCode 65601" in info.value.message


def test_account_the_token_may_not_manage_is_an_auth_error(li):
    with pytest.raises(AuthError, match="Not enough permissions") as info:
        adapter(ad_account_id="508999999").validate_credentials()
    assert info.value.code == 403


def test_canceled_account_fails_validation(li):
    with pytest.raises(PermanentError, match="canceled"):
        adapter(ad_account_id="508000001").validate_credentials()


def test_429_is_rate_limited_with_retry_after(li):
    li.inject(Fault(response=li.error_response(429, "Resource level throttle limit reached",
                                               headers={"Retry-After": "23"})))
    with pytest.raises(RateLimited) as info:
        adapter().create_audience("x")
    assert info.value.retry_after == 23 and info.value.code == 429


def test_server_error_is_transient(li):
    li.inject(Fault(response=li.error_response(503, "Service Unavailable")))
    with pytest.raises(TransientError, match="Service Unavailable"):
        adapter().validate_credentials()


def test_dropped_connection_is_transient(li):
    li.inject(Fault(drop=True))
    with pytest.raises(TransientError, match="connection failed"):
        adapter().validate_credentials()


def test_invalid_request_is_permanent_with_linkedins_message(li):
    with pytest.raises(PermanentError) as info:
        adapter(source_platform="NOT_ENABLED").create_audience("x")
    assert "is not enabled for this app" in info.value.message
    assert "serviceErrorCode 100" in info.value.message
    assert info.value.code == 422


def test_sunset_version_is_permanent(li, monkeypatch):
    monkeypatch.setattr("platforms.adapters.linkedin.LINKEDIN_VERSION", "202401")
    with pytest.raises(PermanentError, match="is not active") as info:
        adapter().validate_credentials()
    assert info.value.code == 426


def test_unknown_segment_status_is_permanent(li):
    with pytest.raises(PermanentError, match="does not exist"):
        adapter().status("99999")


def test_users_for_a_segment_not_yet_available_are_retried_as_transient(li):
    li_adapter = adapter()
    segment_id = li_adapter.create_audience("Fresh")
    li.inject(Fault(method="POST", path_regex=r"/users$",
                    response=li.error_response(404, "DMP segment is not available yet")))
    with pytest.raises(TransientError, match="few seconds") as info:
        li_adapter.add_members(segment_id, [member(1)])
    assert info.value.code == 404


def test_no_error_message_or_repr_carries_the_token(li):
    token = "AQV-secret-linkedin-token-value-123"
    li_adapter = adapter(access_token=token)
    faults = [
        Fault(drop=True),
        Fault(response=li.error_response(429, "Slow down")),
        Fault(response=li.error_response(500, "Boom")),
        Fault(response=li.error_response(400, "Bad")),
    ]
    for fault in [None, *faults]:
        if fault:
            li.inject(fault)
        with pytest.raises(PlatformError) as info:
            li_adapter.validate_credentials()
        assert token not in str(info.value) and token not in repr(info.value)
    assert repr(li_adapter) == f"<LinkedInAdapter account='{ACCOUNT}'>"


def test_full_cycle_over_loopback_http():
    fake = FakeLinkedIn()
    with FakeServer([fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={"linkedin": f"{server.url}/linkedin/rest"}
    ):
        li_adapter = adapter()
        assert li_adapter.validate_credentials().account_name == "Demo ad account"
        segment_id = li_adapter.create_audience("Loopback")
        li_adapter.add_members(segment_id, [member(i) for i in range(50)])
        assert len(fake.audience_members(segment_id)) == 100
        assert li_adapter.status(segment_id).matched == fake.matched_count(segment_id) > 0
        li_adapter.remove_members(segment_id, [member(0)])
        assert len(fake.audience_members(segment_id)) == 98
        li_adapter.delete_audience(segment_id)
        assert segment_id not in fake.segments
