"""TikTok adapter through its public interface, against the fake Business API (responses and loopback)."""

from __future__ import annotations

import hashlib
import json

import pytest
import responses
from django.test import override_settings

from platforms import matchkeys
from platforms.adapters import get_adapter_class, tiktok
from platforms.adapters.base import Operation
from platforms.adapters.tiktok import BATCH_SIZE, typed_error
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from sandbox.base import FakeResponse, FakeServer, Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.tiktok import FakeTikTok

HOST = "https://business-api.tiktok.test/tiktok"
BASE = HOST + "/open_api/v1.3"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["tiktok"].items() if k != "label"}
ADV = CREDS["advertiser_id"]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int) -> dict:
    return {"email": sha(f"user{n}@example.com"), "phone": sha(f"+1555000{n:04d}")}


@pytest.fixture
def tt_fake():
    return FakeTikTok()


@pytest.fixture
def tt(tt_fake, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "tiktok": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, tt_fake, HOST)
        yield tt_fake


def adapter(**overrides):
    return get_adapter_class("tiktok")({**CREDS, **overrides})


def test_registry_gives_the_tiktok_adapter_with_truthful_capabilities():
    cls = get_adapter_class("tiktok")
    caps = cls.capabilities
    assert cls.code == "tiktok" and cls.account_field == "advertiser_id"
    assert tuple(key for key, _ in tiktok.ID_TYPES) == ("email", "phone", "maid")
    assert {key for key, _ in tiktok.ID_TYPES} == set(matchkeys.accepted_keys("tiktok"))
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}
    assert caps.batch_size == BATCH_SIZE
    assert caps.min_audience_size == 1_000


def test_credentials_form_keeps_secrets_apart_and_explains_where_to_find_them():
    form_class = get_adapter_class("tiktok").credentials_form
    assert set(form_class.secret_fields) == {"app_secret", "access_token"}
    assert len(form_class.help_steps) >= 3
    form = form_class(data=DEMO_CREDENTIALS["tiktok"])
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    assert config == {"app_id": CREDS["app_id"], "advertiser_id": ADV}
    assert set(secrets) == {"app_secret", "access_token"}


def test_full_cycle_sends_the_exact_requests(tt):
    tt_adapter = adapter()
    maid = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    batch = [member(i) for i in range(3)] + [{"email": sha("only-email@example.com"), "maid": sha(maid)}]

    result = tt_adapter.validate_credentials()
    assert result.account_name == "Demo advertiser"
    assert result.details["status"] == "STATUS_ENABLE"

    audience_id = tt_adapter.create_audience("VIP buyers", "not sent")
    added = tt_adapter.add_members(audience_id, batch)
    assert (added.received, added.invalid) == (4, 0)
    expected = ({("EMAIL_SHA256", m["email"]) for m in batch} | {("PHONE_SHA256", m["phone"]) for m in batch[:3]}
                | {("IDFA_SHA256", sha(maid))})
    assert tt.audience_members(audience_id) == expected

    status = tt_adapter.status(audience_id)
    assert status.state == "ready"
    assert status.size == status.matched == tt.matched_count(audience_id)
    assert status.raw["name"] == "VIP buyers"

    removed = tt_adapter.remove_members(audience_id, batch[:1])
    assert (removed.received, removed.invalid) == (1, 0)
    assert tt.audience_members(audience_id) == expected - {("EMAIL_SHA256", batch[0]["email"]),
                                                           ("PHONE_SHA256", batch[0]["phone"])}

    tt_adapter.delete_audience(audience_id)
    assert audience_id not in tt.audiences

    reqs = tt.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("GET", "/open_api/v1.3/advertiser/info/"),
        ("POST", "/open_api/v1.3/segment/audience/"),
        ("POST", "/open_api/v1.3/segment/mapping/"),
        ("GET", "/open_api/v1.3/dmp/custom_audience/get/"),
        ("POST", "/open_api/v1.3/segment/mapping/"),
        ("POST", "/open_api/v1.3/dmp/custom_audience/delete/"),
    ]
    for request in reqs:
        assert request.headers["access-token"] == CREDS["access_token"]  # raw, no "Bearer"
        assert "authorization" not in request.headers
    assert reqs[0].query == {"advertiser_ids": [f'["{ADV}"]']}
    assert json.loads(reqs[1].body) == {"advertiser_id": ADV, "custom_audience_name": "VIP buyers", "action": "create"}
    cell = {"audience_ids": [audience_id]}
    assert json.loads(reqs[2].body) == {
        "advertiser_ids": [ADV],
        "action": "add",
        "id_schema": ["EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256"],
        "batch_data": [[{"id": m["email"], **cell}, {"id": m["phone"], **cell}, {}] for m in batch[:3]]
        + [[{"id": batch[3]["email"], **cell}, {}, {"id": sha(maid), **cell}]],
    }
    assert reqs[3].query == {"advertiser_id": [ADV], "custom_audience_ids": [f'["{audience_id}"]']}
    assert json.loads(reqs[4].body) == {
        "advertiser_ids": [ADV],
        "action": "delete",
        "id_schema": ["EMAIL_SHA256", "PHONE_SHA256"],
        "batch_data": [[{"id": batch[0]["email"], **cell}, {"id": batch[0]["phone"], **cell}]],
    }
    assert json.loads(reqs[5].body) == {"advertiser_id": ADV, "custom_audience_ids": [audience_id]}
    assert tt.add_requests == 1 and tt.remove_requests == 1 and tt.rows_received == 5


def test_values_are_the_matchkeys_sha256_per_id_type(tt):
    prepared = matchkeys.prepare_record(
        {"email": " Alice@Example.com ", "phone": "(650) 555-0100", "maid": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
        default_region="US",
    )
    values = matchkeys.platform_values("tiktok", prepared.stored)
    assert values == {
        "email": sha("alice@example.com"),
        "phone": sha("16505550100"),  # E.164 digits without "+" (TikTok's hashed example)
        "maid": sha("6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    }
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("One")
    tt_adapter.add_members(audience_id, [values])
    assert tt.audience_members(audience_id) == {
        ("EMAIL_SHA256", values["email"]), ("PHONE_SHA256", values["phone"]), ("IDFA_SHA256", values["maid"]),
    }


def test_a_new_audience_is_processing_until_it_has_data(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Empty")
    status = tt_adapter.status(audience_id)
    assert status.state == "processing" and status.size == 0


def test_status_figures_are_plausible_for_a_large_batch(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Big")
    tt_adapter.add_members(audience_id, [{"email": sha(f"p{i}@example.com")} for i in range(BATCH_SIZE)])
    size = tt_adapter.status(audience_id).size
    assert 300 < size < 500  # the fake matches ~40% of ids deterministically


def test_people_without_a_tiktok_key_are_counted_invalid_and_not_sent(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Mixed")
    result = tt_adapter.add_members(audience_id, [{"email": sha("a@example.com")}, {"first_name": sha("x")}, {}])
    assert (result.received, result.invalid) == (3, 2)
    assert "2 of 3" in result.messages[0]
    sent = json.loads(tt.requests[-1].body)
    assert sent["id_schema"] == ["EMAIL_SHA256"] and len(sent["batch_data"]) == 1


def test_a_batch_of_nobody_usable_sends_nothing(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Nobody")
    count = len(tt.requests)
    assert tt_adapter.add_members(audience_id, [{}, {}]).invalid == 2
    assert len(tt.requests) == count


def test_more_than_the_batch_size_is_refused_before_sending(tt):
    with pytest.raises(PermanentError, match=f"at most {BATCH_SIZE:,}"):
        adapter().add_members("1", [member(1)] * (BATCH_SIZE + 1))
    assert tt.requests == []


# Typed errors (TikTok answers HTTP 200 with a code) -----------------------------------------
def test_expired_token_is_an_auth_error(tt):
    with pytest.raises(AuthError, match="expired") as info:
        adapter(access_token=EXPIRED_TOKEN).validate_credentials()
    assert info.value.code == 40102


def test_wrong_token_is_an_auth_error(tt):
    with pytest.raises(AuthError, match="incorrect or has been revoked") as info:
        adapter(access_token="not-the-token").create_audience("x")
    assert info.value.code == 40105


def test_advertiser_the_token_may_not_operate_is_an_auth_error(tt):
    with pytest.raises(AuthError, match="No permission") as info:
        adapter(advertiser_id="7100000000000000099").validate_credentials()
    assert info.value.code == 40001


def test_disabled_advertiser_fails_validation(tt):
    with pytest.raises(PermanentError, match="STATUS_DISABLE"):
        adapter(advertiser_id="7100000000000000002").validate_credentials()


def test_rate_limit_code_is_rate_limited_with_a_retry_after(tt):
    tt.inject(Fault(response=tt.error_response(40100, "Too many requests. Please retry in some time.")))
    with pytest.raises(RateLimited) as info:
        adapter().create_audience("x")
    assert info.value.code == 40100 and info.value.retry_after == 60


def test_rate_limit_honours_a_retry_after_header(tt):
    tt.inject(Fault(response=tt.error_response(40100, "Too many requests.", headers={"Retry-After": "7"})))
    with pytest.raises(RateLimited) as info:
        adapter().validate_credentials()
    assert info.value.retry_after == 7


def test_http_429_from_a_proxy_is_rate_limited(tt):
    tt.inject(Fault(response=FakeResponse(429, "Too Many Requests", headers={"Retry-After": "3",
                                                                             "Content-Type": "text/plain"})))
    with pytest.raises(RateLimited) as info:
        adapter().validate_credentials()
    assert info.value.retry_after == 3 and info.value.code == 429


def test_server_error_code_is_transient(tt):
    tt.inject(Fault(response=tt.error_response(50000, "System error.")))
    with pytest.raises(TransientError, match="System error") as info:
        adapter().validate_credentials()
    assert info.value.code == 50000


def test_http_503_without_the_envelope_is_transient(tt):
    tt.inject(Fault(response=FakeResponse(503, "<html>Service Unavailable</html>",
                                          headers={"Content-Type": "text/html"})))
    with pytest.raises(TransientError):
        adapter().validate_credentials()


def test_dropped_connection_is_transient(tt):
    tt.inject(Fault(drop=True))
    with pytest.raises(TransientError, match="connection failed"):
        adapter().validate_credentials()


def test_invalid_parameter_is_permanent_with_tiktoks_message(tt):
    with pytest.raises(PermanentError) as info:
        adapter().create_audience("")
    assert info.value.code == 40002
    assert "custom_audience_name: required." in info.value.message


def test_unknown_audience_is_permanent(tt):
    with pytest.raises(PermanentError, match="does not exist"):
        adapter().status("999")


@pytest.mark.parametrize(("code", "error"), [
    (40100, RateLimited), (40001, AuthError), (40101, AuthError), (40102, AuthError), (40104, AuthError),
    (40105, AuthError), (40002, PermanentError), (40700, PermanentError), (50000, TransientError),
    (50002, TransientError), (51021, TransientError),
])
def test_error_code_table(code, error):
    assert type(typed_error(code, "m")) is error


def test_fake_refuses_a_bearer_prefixed_token(tt):
    with pytest.raises(AuthError, match="incorrect"):
        adapter(access_token=f"Bearer {CREDS['access_token']}").validate_credentials()


def test_no_error_message_or_repr_carries_the_token(tt):
    token = "secret-tiktok-token-value-123"
    tt_adapter = adapter(access_token=token)
    faults = [
        Fault(drop=True),
        Fault(response=tt.error_response(40100, "Slow down")),
        Fault(response=tt.error_response(50000, "Boom")),
        Fault(response=tt.error_response(40002, "Bad")),
    ]
    for fault in [None, *faults]:
        if fault:
            tt.inject(fault)
        with pytest.raises(PlatformError) as info:
            tt_adapter.validate_credentials()
        assert token not in str(info.value) and token not in repr(info.value)
    assert repr(tt_adapter) == f"<TikTokAdapter account='{ADV}'>"


def test_full_cycle_over_loopback_http():
    fake = FakeTikTok()
    with FakeServer([fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={"tiktok": f"{server.url}/tiktok/open_api/v1.3"}
    ):
        tt_adapter = adapter()
        assert tt_adapter.validate_credentials().account_name == "Demo advertiser"
        audience_id = tt_adapter.create_audience("Loopback")
        tt_adapter.add_members(audience_id, [member(i) for i in range(50)])
        assert len(fake.audience_members(audience_id)) == 100
        assert tt_adapter.status(audience_id).size == fake.matched_count(audience_id) > 0
        tt_adapter.remove_members(audience_id, [member(0)])
        assert len(fake.audience_members(audience_id)) == 98
        tt_adapter.delete_audience(audience_id)
        assert audience_id not in fake.audiences
