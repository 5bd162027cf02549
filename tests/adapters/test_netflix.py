"""The Netflix partner-contract adapter through its public interface, against the fake partner endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
import responses

from platforms import matchkeys
from platforms.adapters import get_adapter_class, netflix
from platforms.adapters.base import Operation
from platforms.adapters.netflix import NetflixAdapter, canonical_string
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from sandbox.base import FakeServer, Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.netflix import FakeNetflix

HOST = "https://partner.test/netflix"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["netflix"].items() if k != "label"}
CREDS["base_url"] = HOST + "/v1"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "partners" / "netflix.md"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int) -> dict:
    return {"email": sha(f"user{n}@example.com"), "phone": sha(f"+1555000{n:04d}")}


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def nfx(clock):
    fake = FakeNetflix(clock=clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, HOST)
        yield fake


def adapter(clock=None, **overrides) -> NetflixAdapter:
    instance = get_adapter_class("netflix")({**CREDS, **overrides})
    instance.clock = clock or Clock()
    return instance


def expected_headers(method: str, path: str, body: bytes, timestamp: int = NOW) -> dict:
    canonical = f"{method}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
    signature = hmac.new(CREDS["api_secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {"x-partner-key-id": CREDS["api_key"], "x-partner-timestamp": str(timestamp),
            "x-partner-signature": signature}


def test_registry_gives_the_netflix_adapter_with_its_capabilities():
    cls = get_adapter_class("netflix")
    caps = cls.capabilities
    assert cls.code == "netflix" and cls.account_field == "partner_id"
    assert caps.batch_size == 10_000
    assert tuple(key for key, _ in netflix.SCHEMA) == ("email", "phone", "maid") == matchkeys.accepted_keys("netflix")
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS,
                               Operation.DELETE}


def test_canonical_string_is_the_documented_four_lines():
    assert canonical_string("get", "/v1/partners/p", "123", b"") == f"GET\n/v1/partners/p\n123\n{EMPTY_SHA}"
    # The contract document states the same empty-body hash.
    assert EMPTY_SHA in CONTRACT.read_text()


def test_full_cycle_sends_the_exact_signed_requests(nfx):
    nf = adapter()
    batch = [member(1), member(2), {"email": sha("x@example.com"), "maid": sha("aaaa-bbbb")}]

    result = nf.validate_credentials()
    assert result.account_name == "Demo partner endpoint"
    assert result.details["partner_integration"] is True

    segment_id = nf.create_audience("VIP buyers", "Synced by Activation Manager")
    added = nf.add_members(segment_id, batch)
    assert (added.received, added.invalid) == (3, 0)
    assert len(nfx.segment_members(segment_id)) == 3

    status = nf.status(segment_id)
    assert status.size == 3 and status.state == "ready"
    assert status.matched == nfx._view(segment_id)["matched_count"]

    removed = nf.remove_members(segment_id, [{"email": batch[0]["email"]}])
    assert removed.received == 1
    assert batch[0]["email"] not in nfx.audience_values(segment_id, "email_sha256")
    assert len(nfx.segment_members(segment_id)) == 2

    nf.delete_audience(segment_id)
    assert segment_id not in nfx.segments

    reqs = nfx.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("GET", "/v1/partners/demo-partner"),
        ("POST", "/v1/segments"),
        ("POST", f"/v1/segments/{segment_id}/members:add"),
        ("GET", f"/v1/segments/{segment_id}"),
        ("POST", f"/v1/segments/{segment_id}/members:remove"),
        ("DELETE", f"/v1/segments/{segment_id}"),
    ]
    for request in reqs:
        signed = expected_headers(request.method, "/netflix" + request.path, request.body)
        assert {k: request.headers[k] for k in signed} == signed
        assert CREDS["api_secret"] not in json.dumps(request.headers)
    assert reqs[0].body == b"" and reqs[3].body == b"" and reqs[5].body == b""

    assert json.loads(reqs[1].body) == {"name": "VIP buyers", "description": "Synced by Activation Manager"}
    assert reqs[1].headers["content-type"] == "application/json"
    assert json.loads(reqs[2].body) == {
        "schema": ["email_sha256", "phone_sha256", "maid_sha256"],
        "members": [
            [member(1)["email"], member(1)["phone"], ""],
            [member(2)["email"], member(2)["phone"], ""],
            [sha("x@example.com"), "", sha("aaaa-bbbb")],
        ],
    }
    assert json.loads(reqs[4].body) == {"schema": ["email_sha256"], "members": [[batch[0]["email"]]]}


def test_values_from_matchkeys_are_sent_unchanged(nfx):
    prepared = matchkeys.prepare_record(
        {"email": " Alice@Example.com ", "phone": "(650) 555-0100", "maid": "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"},
        default_region="US",
    )
    values = matchkeys.platform_values("netflix", prepared.stored)
    nf = adapter()
    segment_id = nf.create_audience("One")
    nf.add_members(segment_id, [values])
    assert nfx.segment_members(segment_id) == {frozenset({
        ("email_sha256", sha("alice@example.com")),
        ("phone_sha256", sha("+16505550100")),
        ("maid_sha256", sha("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")),
    })}


def test_adding_an_existing_member_is_a_no_op_and_removing_a_stranger_too(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Idempotent")
    nf.add_members(segment_id, [member(1)])
    nf.add_members(segment_id, [member(1)])
    nf.remove_members(segment_id, [member(9)])
    assert nfx.segment_members(segment_id) == {frozenset({("email_sha256", member(1)["email"]),
                                                         ("phone_sha256", member(1)["phone"])})}


def test_invalid_rows_are_reported_by_index_without_values(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Mixed")
    bad = "NOT-A-HASH"
    result = nf.add_members(segment_id, [member(1), {"email": bad}])
    assert (result.received, result.invalid) == (2, 1)
    assert result.messages == ("row 1: email_sha256 is not a lowercase SHA-256 hex digest",)
    assert bad not in " ".join(result.messages)


def test_an_empty_batch_sends_nothing(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Nobody")
    before = len(nfx.requests)
    assert nf.add_members(segment_id, []).received == 0
    assert len(nfx.requests) == before


def test_deleting_twice_is_fine(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Gone")
    nf.delete_audience(segment_id)
    nf.delete_audience(segment_id)
    with pytest.raises(PermanentError, match="not_found"):
        nf.status(segment_id)


# Signing and typed errors ---------------------------------------------------------------
def test_stale_timestamp_is_refused_as_an_auth_error_with_a_clock_hint(nfx, clock):
    nf = adapter(clock=Clock(NOW - 301))
    with pytest.raises(AuthError) as info:
        nf.validate_credentials()
    assert "stale_timestamp" in info.value.message and "clock" in info.value.message
    assert info.value.code == 401
    # 300 s of skew in either direction is still accepted.
    adapter(clock=Clock(NOW + 300)).validate_credentials()
    adapter(clock=Clock(NOW - 300)).validate_credentials()


def test_tampered_body_is_refused(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Target")
    body = json.dumps({"schema": ["email_sha256"], "members": [[sha("a@example.com")]]}).encode()
    path = f"/netflix/v1/segments/{segment_id}/members:add"
    headers = {**expected_headers("POST", path, body), "Content-Type": "application/json"}
    ok = requests.post(HOST + f"/v1/segments/{segment_id}/members:add", data=body, headers=headers)
    assert ok.status_code == 200
    tampered = body.replace(sha("a@example.com").encode(), sha("b@example.com").encode())
    assert tampered != body
    refused = requests.post(HOST + f"/v1/segments/{segment_id}/members:add", data=tampered, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_signature"
    assert nfx.audience_values(segment_id, "email_sha256") == {sha("a@example.com")}


def test_wrong_secret_is_an_auth_error(nfx):
    with pytest.raises(AuthError, match="invalid_signature.*API secret"):
        adapter(api_secret="not-the-secret").validate_credentials()


def test_unknown_and_revoked_keys_are_auth_errors(nfx):
    with pytest.raises(AuthError, match="unknown_key"):
        adapter(api_key="nobody").validate_credentials()
    with pytest.raises(AuthError, match="key_revoked"):
        adapter(api_key=EXPIRED_TOKEN).validate_credentials()


def test_key_of_another_partner_is_forbidden(nfx):
    with pytest.raises(AuthError, match="forbidden") as info:
        adapter(api_key="other-partner-key", api_secret="other-partner-secret").validate_credentials()
    assert info.value.code == 403


def test_missing_signature_headers_are_refused(nfx):
    answer = requests.get(HOST + "/v1/partners/demo-partner")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_signature"


def test_429_is_rate_limited_with_retry_after(nfx):
    nfx.inject(Fault(response=nfx.error_response(429, "rate_limited", "Slow down.", headers={"Retry-After": "12"})))
    with pytest.raises(RateLimited) as info:
        adapter().create_audience("x")
    assert info.value.retry_after == 12 and "rate_limited" in info.value.message


def test_server_errors_are_transient(nfx):
    nfx.inject(Fault(response=nfx.error_response(503, "unavailable", "Maintenance.")))
    with pytest.raises(TransientError, match="Maintenance"):
        adapter().validate_credentials()
    nfx.inject(Fault(response=nfx.error_response(500, "internal_error", "Oops.")))
    with pytest.raises(TransientError):
        adapter().validate_credentials()


def test_dropped_connection_is_transient(nfx):
    nfx.inject(Fault(drop=True))
    with pytest.raises(TransientError, match="connection failed"):
        adapter().validate_credentials()


def test_invalid_request_is_permanent_with_the_partners_message(nfx):
    with pytest.raises(PermanentError, match=r"name is required.*\(invalid_request\)") as info:
        adapter().create_audience("")
    assert info.value.code == 400


def test_oversized_batch_is_refused_before_sending(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Big")
    with pytest.raises(PermanentError, match="at most 10,000"):
        nf.add_members(segment_id, [member(1)] * 10_001)


def test_fake_refuses_malformed_member_bodies(nfx):
    nf = adapter()
    segment_id = nf.create_audience("Strict")
    path = f"/netflix/v1/segments/{segment_id}/members:add"
    for payload, fragment in [
        ({"schema": ["email"], "members": [["x"]]}, "schema must list"),
        ({"schema": ["email_sha256"], "members": []}, "non-empty"),
        ({"schema": ["email_sha256"], "members": [["a", "b"]]}, "members[0]"),
        ({"schema": ["email_sha256"], "members": [[sha("a")]] * 10_001}, "At most 10000"),
    ]:
        body = json.dumps(payload).encode()
        headers = {**expected_headers("POST", path, body), "Content-Type": "application/json"}
        answer = requests.post(HOST + f"/v1/segments/{segment_id}/members:add", data=body, headers=headers)
        assert answer.status_code == 400 and fragment in answer.json()["error"]["message"]


def test_no_error_message_or_repr_carries_a_secret(nfx):
    key, secret = "key-id-that-is-secret-42", "signing-secret-that-is-secret-42"
    nfx.keys[key] = (nfx.partner_id, secret)
    nf = adapter(api_key=key, api_secret=secret)
    faults = [
        Fault(drop=True),
        Fault(response=nfx.error_response(429, "rate_limited", "Slow down.")),
        Fault(response=nfx.error_response(500, "internal_error", "Oops.")),
        Fault(response=nfx.error_response(400, "invalid_request", "Bad.")),
    ]
    errors = []
    for fault in faults:
        nfx.inject(fault)
        with pytest.raises(PlatformError) as info:
            nf.validate_credentials()
        errors.append(info.value)
    for bad in (adapter(api_key=key, api_secret="wrong"), adapter(api_key=key, api_secret=secret, clock=Clock(0))):
        with pytest.raises(AuthError) as info:
            bad.validate_credentials()
        errors.append(info.value)
    for error in errors:
        assert key not in str(error) and secret not in str(error) and key not in repr(error)
    assert key not in repr(nf) and secret not in repr(nf)
    assert repr(nf) == "<NetflixAdapter account='demo-partner'>"


def test_contract_document_names_every_endpoint_header_and_error_code():
    text = CONTRACT.read_text()
    assert "partner integration" in text
    for fragment in ["GET /partners/{partner_id}", "POST /segments", "members:add", "members:remove",
                     "GET /segments/{id}", "DELETE /segments/{id}", "X-Partner-Key-Id", "X-Partner-Timestamp",
                     "X-Partner-Signature", "300 seconds", "10,000", "Retry-After", "invalid_request",
                     "batch_too_large", "missing_signature", "unknown_key", "key_revoked", "stale_timestamp",
                     "invalid_signature", "forbidden", "not_found", "rate_limited", "internal_error", "unavailable",
                     "email_sha256", "phone_sha256", "maid_sha256", "uploaded_count", "matched_count"]:
        assert fragment in text, fragment


def test_full_cycle_over_loopback_http_at_the_demo_path(settings):
    fake = FakeNetflix()
    with FakeServer([fake]) as server:
        settings.FAKE_PLATFORMS_URL = server.url  # the egress guard lets only the sandbox's own address through
        nf = get_adapter_class("netflix")({**CREDS, "base_url": f"{server.url}/netflix/v1"})
        assert nf.validate_credentials().account_name == "Demo partner endpoint"
        segment_id = nf.create_audience("Loopback")
        nf.add_members(segment_id, [member(i) for i in range(200)])
        status = nf.status(segment_id)
        assert status.size == 200 and 100 < status.matched < 160  # ~65 % matched, deterministic
        nf.remove_members(segment_id, [member(0)])
        assert nf.status(segment_id).size == 199
        nf.delete_audience(segment_id)
        assert fake.signature_failures == 0
