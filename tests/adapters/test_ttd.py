"""The Trade Desk adapter through its public interface, against the fake CRM data API (responses and loopback)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import responses
from django.test import override_settings

from platforms import matchkeys
from platforms.adapters import get_adapter_class
from platforms.adapters import ttd as ttd_module
from platforms.adapters.base import Operation, UploadSession
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from sandbox.base import FakeResponse, FakeServer, Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.ttd import FakeTradeDesk

HOST = "https://ttd.test/ttd"
BASE = HOST + "/v3"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["ttd"].items() if k != "label"}
ADV = CREDS["advertiser_id"]
EMAIL_TYPE, PHONE_TYPE = "EmailHashedUnifiedId2", "PhoneNumberHashedUnifiedId2"


def b64sha(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()


def member(n: int) -> dict:
    return {"email": b64sha(f"user{n}@example.com"), "phone": b64sha(f"+1555000{n:04d}")}


@pytest.fixture
def ttd_fake():
    return FakeTradeDesk(public_url=HOST)


@pytest.fixture
def ttd(ttd_fake, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "ttd": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, ttd_fake, HOST)
        yield ttd_fake


def adapter(**overrides):
    return get_adapter_class("ttd")({**CREDS, **overrides})


def test_registry_gives_the_ttd_adapter_with_truthful_capabilities():
    cls = get_adapter_class("ttd")
    caps = cls.capabilities
    assert cls.code == "ttd" and cls.account_field == "advertiser_id"
    assert tuple(key for key, _ in ttd_module.PII_TYPES) == ("email", "phone")
    # CRM segments take Add or Replace drops only: no per-user removal is declared.
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REPLACE, Operation.STATUS,
                               Operation.DELETE}
    assert Operation.REMOVE not in caps.operations
    assert caps.rate_limit.requests > 0 and caps.rate_limit.per_seconds == 60
    assert {key for key, _ in ttd_module.PII_TYPES} == set(matchkeys.accepted_keys("ttd"))


def test_full_cycle_sends_the_exact_requests(ttd):
    ttd_adapter = adapter()
    batch = [member(i) for i in range(3)] + [{"email": b64sha("only-email@example.com")}]

    result = ttd_adapter.validate_credentials()
    assert result.account_name == "Demo advertiser"
    assert result.details["partner_id"] == CREDS["partner_id"]

    crm_id = ttd_adapter.create_audience("VIP buyers", "ignored by TTD")
    added = ttd_adapter.add_members(crm_id, batch)
    assert (added.received, added.invalid) == (4, 0)
    assert ttd.audience_values(crm_id, EMAIL_TYPE) == {m["email"] for m in batch}
    assert ttd.audience_values(crm_id, PHONE_TYPE) == {m["phone"] for m in batch if "phone" in m}

    status = ttd_adapter.status(crm_id)
    assert status.state == "active"
    assert status.raw["SegmentName"] == "VIP buyers" and status.raw["Region"] == "US"
    assert status.matched is None  # TTD reports no match figures through this API

    with pytest.raises(PermanentError, match="cannot remove individual people"):
        ttd_adapter.remove_members(crm_id, batch[:1])

    ttd_adapter.delete_audience(crm_id)
    assert crm_id not in ttd.segments

    reqs = ttd.requests
    drop_paths = [r.path for r in reqs if r.method == "PUT"]
    assert [(r.method, r.path) for r in reqs] == [
        ("GET", f"/v3/advertiser/{ADV}"),
        ("POST", "/v3/crmdata/segment"),
        ("POST", f"/v3/crmdata/segment/{ADV}/{crm_id}"),
        ("PUT", drop_paths[0]),
        ("POST", f"/v3/crmdata/segment/{ADV}/{crm_id}"),
        ("PUT", drop_paths[1]),
        ("GET", f"/v3/crmdata/segment/{ADV}/{crm_id}"),
        ("DELETE", f"/v3/crmdata/segment/{ADV}/{crm_id}"),
    ]
    api_calls = [r for r in reqs if r.method != "PUT"]
    for request in api_calls:
        assert request.headers["ttd-auth"] == CREDS["api_token"]
    for request in reqs:
        if request.method == "PUT":  # the pre-signed storage URL never gets the token
            assert "ttd-auth" not in request.headers
            assert request.headers["content-type"] == "text/plain"
            assert request.query["X-Amz-Signature"]

    assert json.loads(reqs[1].body) == {"AdvertiserId": ADV, "SegmentName": "VIP buyers", "Region": "US"}
    assert json.loads(reqs[2].body) == {"PiiType": EMAIL_TYPE, "MergeMode": "Add"}
    assert reqs[3].body.decode() == "".join(f"{m['email']}\n" for m in batch)
    assert json.loads(reqs[4].body) == {"PiiType": PHONE_TYPE, "MergeMode": "Add"}
    assert reqs[5].body.decode() == "".join(f"{m['phone']}\n" for m in batch[:3])


def test_values_are_the_matchkeys_base64_digests_sent_unchanged(ttd):
    prepared = matchkeys.prepare_record({"email": " Alice@Example.com ", "phone": "+1 650 555 0100"},
                                        default_region="US")
    values = matchkeys.platform_values("ttd", prepared.stored)
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("One")
    ttd_adapter.add_members(crm_id, [values])
    assert ttd.audience_values(crm_id, EMAIL_TYPE) == {values["email"]}
    assert base64.b64decode(values["email"]) == hashlib.sha256(b"alice@example.com").digest()
    assert ttd.audience_values(crm_id, PHONE_TYPE) == {values["phone"]}


def test_replace_session_leaves_exactly_the_sessions_members(ttd):
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("Mirror")
    ttd_adapter.add_members(crm_id, [member(i) for i in range(5)])
    first = ttd_adapter.replace_members(crm_id, [member(10)], session=UploadSession(9, 1, False, 2))
    second = ttd_adapter.replace_members(crm_id, [member(11)], session=UploadSession(9, 2, True, 2))
    assert first.received == second.received == 1
    assert ttd.audience_values(crm_id, EMAIL_TYPE) == {member(10)["email"], member(11)["email"]}
    assert ttd.audience_values(crm_id, PHONE_TYPE) == {member(10)["phone"], member(11)["phone"]}
    # Only the very first drop of the session replaces.
    assert [(d["pii"], d["mode"]) for d in ttd.drops[-4:]] == [
        (EMAIL_TYPE, "Replace"), (PHONE_TYPE, "Add"), (EMAIL_TYPE, "Add"), (PHONE_TYPE, "Add"),
    ]


def test_replacing_with_nobody_empties_the_segment(ttd):
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("Mirror")
    ttd_adapter.add_members(crm_id, [member(1)])
    ttd_adapter.replace_members(crm_id, [], session=UploadSession(3, 1, True, 0))
    assert ttd.audience_members(crm_id) == set()


def test_members_without_a_usable_hash_are_counted_invalid_and_not_sent(ttd):
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("Mixed")
    hexdigest = hashlib.sha256(b"x@example.com").hexdigest()  # hex, not TTD's base64
    result = ttd_adapter.add_members(crm_id, [member(1), {"email": hexdigest}, {}])
    assert (result.received, result.invalid) == (3, 2)
    assert "2 of 3" in result.messages[0] and hexdigest not in result.messages[0]
    assert ttd.audience_values(crm_id, EMAIL_TYPE) == {member(1)["email"]}


def test_eu_segments_get_no_phone_numbers(ttd):
    ttd_adapter = adapter(region="EU")
    crm_id = ttd_adapter.create_audience("EU list")
    ttd_adapter.add_members(crm_id, [member(1)])
    assert ttd.segments[crm_id]["Region"] == "EU"
    assert ttd.audience_values(crm_id, PHONE_TYPE) == set()
    assert ttd.audience_values(crm_id, EMAIL_TYPE) == {member(1)["email"]}


# Typed errors ---------------------------------------------------------------------------
def test_expired_token_is_an_auth_error(ttd):
    with pytest.raises(AuthError, match="expired") as info:
        adapter(api_token=EXPIRED_TOKEN).validate_credentials()
    assert info.value.code == 401


def test_wrong_token_is_an_auth_error(ttd):
    with pytest.raises(AuthError, match="invalid"):
        adapter(api_token="not-the-token").create_audience("x")


def test_advertiser_the_token_may_not_manage_is_an_auth_error(ttd):
    with pytest.raises(AuthError, match="permission") as info:
        adapter(advertiser_id="otheradv9").validate_credentials()
    assert info.value.code == 403


def test_advertiser_of_another_partner_fails_validation(ttd):
    with pytest.raises(PermanentError, match="belongs to partner demopartner"):
        adapter(partner_id="someoneelse").validate_credentials()


def test_429_is_rate_limited_with_retry_after(ttd):
    ttd.inject(Fault(response=ttd.error_response(429, "Too many requests.", headers={"Retry-After": "17"})))
    with pytest.raises(RateLimited) as info:
        adapter().create_audience("x")
    assert info.value.retry_after == 17 and info.value.code == 429


def test_server_error_is_transient(ttd):
    ttd.inject(Fault(response=ttd.error_response(503, "Service unavailable.")))
    with pytest.raises(TransientError, match="Service unavailable"):
        adapter().validate_credentials()


def test_dropped_connection_is_transient(ttd):
    ttd.inject(Fault(drop=True))
    with pytest.raises(TransientError, match="connection failed"):
        adapter().validate_credentials()


def test_dropped_connection_during_the_drop_upload_is_transient(ttd):
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("x")
    ttd.inject(Fault(drop=True, method="PUT"))
    with pytest.raises(TransientError):
        ttd_adapter.add_members(crm_id, [member(1)])


def test_invalid_request_is_permanent_with_ttds_message_and_details(ttd):
    with pytest.raises(PermanentError) as info:
        adapter().create_audience("")
    assert "The request is invalid." in info.value.message
    assert "SegmentName: The SegmentName field is required." in info.value.message
    assert info.value.code == 400


def test_unknown_segment_is_permanent(ttd):
    with pytest.raises(PermanentError, match="was not found"):
        adapter().status("crm99999")


def test_refused_drop_url_is_retried_as_transient(ttd):
    ttd_adapter = adapter()
    crm_id = ttd_adapter.create_audience("x")
    ttd.inject(Fault(method="PUT", response=FakeResponse(403, "<Error><Code>AccessDenied</Code></Error>")))
    with pytest.raises(TransientError, match="upload URL was refused"):
        ttd_adapter.add_members(crm_id, [member(1)])


def test_fake_refuses_the_removed_retention_property_and_tokens_on_drops(ttd):
    import requests

    headers = {"TTD-Auth": CREDS["api_token"]}
    crm_id = adapter().create_audience("x")
    answer = requests.post(f"{BASE}/crmdata/segment/{ADV}/{crm_id}", headers=headers,
                           json={"PiiType": EMAIL_TYPE, "MergeMode": "Add", "RetentionEnabled": True})
    assert answer.status_code == 400 and answer.json()["ErrorDetails"][0]["Property"] == "RetentionEnabled"
    drop = requests.post(f"{BASE}/crmdata/segment/{ADV}/{crm_id}", headers=headers,
                         json={"PiiType": EMAIL_TYPE, "MergeMode": "Add"}).json()
    leaked = requests.put(drop["Url"], data=b"x\n", headers={**headers, "Content-Type": "text/plain"})
    assert leaked.status_code == 400 and b"InvalidArgument" in leaked.content


def test_no_error_message_or_repr_carries_the_token(ttd):
    token = "secret-ttd-token-value-123"
    ttd_adapter = adapter(api_token=token)
    faults = [
        Fault(drop=True),
        Fault(response=ttd.error_response(429, "Slow down")),
        Fault(response=ttd.error_response(500, "Boom")),
        Fault(response=ttd.error_response(400, "Bad")),
    ]
    for fault in [None, *faults]:
        if fault:
            ttd.inject(fault)
        with pytest.raises(PlatformError) as info:
            ttd_adapter.validate_credentials()
        assert token not in str(info.value) and token not in repr(info.value)
    assert token not in repr(ttd_adapter)
    assert repr(ttd_adapter) == f"<TradeDeskAdapter account='{ADV}'>"


def test_full_cycle_over_loopback_http_with_drop_urls_on_the_server():
    fake = FakeTradeDesk()
    with FakeServer([fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={"ttd": f"{server.url}/ttd/v3"}
    ):
        ttd_adapter = adapter()
        assert ttd_adapter.validate_credentials().account_name == "Demo advertiser"
        crm_id = ttd_adapter.create_audience("Loopback")
        ttd_adapter.add_members(crm_id, [member(i) for i in range(50)])
        assert len(fake.audience_values(crm_id, EMAIL_TYPE)) == 50
        assert 0 < fake.matched_count(crm_id) < 100
        assert ttd_adapter.status(crm_id).raw["CrmDataId"] == crm_id
        ttd_adapter.delete_audience(crm_id)
        assert crm_id not in fake.segments
