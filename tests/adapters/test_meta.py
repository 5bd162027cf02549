"""The Meta adapter through its public interface, against the fake Graph API (responses-mounted and loopback)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import responses
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from platforms.adapters import get_adapter_class, meta
from platforms.adapters.base import Operation, UploadSession
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from sandbox.base import FakeServer, Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.meta import FakeMetaGraph

BASE = "https://graph.test/meta"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["meta"].items() if k != "label"}
PROOF = hmac.new(CREDS["app_secret"].encode(), CREDS["access_token"].encode(), hashlib.sha256).hexdigest()


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int, **extra) -> dict:
    return {"email": sha(f"user{n}@example.com"), "phone": sha(f"1555000{n:04d}"), **extra}


@pytest.fixture
def meta_fake():
    return FakeMetaGraph()


@pytest.fixture
def meta_graph(meta_fake, settings):
    """The fake mounted with `responses` at the Meta endpoint setting."""
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, meta_fake, BASE)
        yield meta_fake


def adapter(**overrides):
    return get_adapter_class("meta")({**CREDS, **overrides})


def params(request) -> dict[str, str]:
    """Every parameter of a recorded request (query string and urlencoded body)."""
    merged = {k: v[-1] for k, v in request.query.items()}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        merged.update(request.form())
    return merged


def test_registry_gives_the_meta_adapter_with_its_declared_capabilities():
    cls = get_adapter_class("meta")
    caps = cls.capabilities
    assert cls.code == "meta" and cls.account_field == "ad_account_id"
    assert caps.batch_size == 10_000
    assert set(cls.match_keys) == {key for key, _ in meta.SCHEMA_KEYS} == {
        "email", "phone", "gender", "dob_year", "dob_month", "dob_day", "last_name", "first_name",
        "first_initial", "city", "state", "postal_code", "country", "maid", "external_id",
    }
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.REPLACE,
                               Operation.STATUS, Operation.DELETE}
    assert caps.rate_limit.requests > 0 and caps.rate_limit.per_seconds > 0


def test_full_cycle_sends_the_exact_graph_requests(meta_graph):
    meta = adapter()
    batch1 = [member(i) for i in range(3)]
    # The second batch carries other keys (and misses phone): the schema follows the keys present.
    batch2 = [
        {"email": sha("user3@example.com"), "first_name": sha("ann"), "country": sha("us"), "maid": "ab-cd-ef"},
        {"external_id": "crm-42", "first_name": sha("bob")},
    ]

    result = meta.validate_credentials()
    assert result.account_name == "Demo ad account"
    assert result.details["custom_audience_terms_accepted"] is True

    audience_id = meta.create_audience("VIP buyers", "Synced by Activation Manager")
    first = meta.add_members(audience_id, batch1, session=UploadSession(77, 1, False, 5))
    second = meta.add_members(audience_id, batch2, session=UploadSession(77, 2, True, 5))
    assert (first.received, first.invalid, second.received, second.invalid) == (3, 0, 2, 0)
    assert len(meta_graph.audience_members(audience_id)) == 5

    status = meta.status(audience_id)
    assert status.size_lower is not None and status.size_lower <= status.size <= status.size_upper
    assert status.state

    removed = meta.remove_members(audience_id, [batch1[0]], session=UploadSession(78, 1, True, 1))
    assert removed.received == 1
    assert batch1[0]["email"] not in meta_graph.audience_values(audience_id, "EMAIL")
    assert len(meta_graph.audience_members(audience_id)) == 4

    meta.delete_audience(audience_id)
    assert audience_id not in meta_graph.audiences

    reqs = meta_graph.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("GET", "/v26.0/me"),
        ("GET", "/v26.0/act_1234567890"),
        ("POST", "/v26.0/act_1234567890/customaudiences"),
        ("POST", f"/v26.0/{audience_id}/users"),
        ("POST", f"/v26.0/{audience_id}/users"),
        ("GET", f"/v26.0/{audience_id}"),
        ("DELETE", f"/v26.0/{audience_id}/users"),
        ("DELETE", f"/v26.0/{audience_id}"),
    ]
    for request in reqs:  # the SDK authenticates every call with the token and its appsecret_proof
        assert request.query["access_token"] == [CREDS["access_token"]]
        assert request.query["appsecret_proof"] == [PROOF]

    assert params(reqs[1])["fields"] == "id,name,account_status,tos_accepted"
    create = params(reqs[2])
    assert {k: create[k] for k in ("name", "description", "subtype", "customer_file_source")} == {
        "name": "VIP buyers", "description": "Synced by Activation Manager", "subtype": "CUSTOM",
        "customer_file_source": "USER_PROVIDED_ONLY",
    }

    add1 = params(reqs[3])
    assert json.loads(add1["payload"]) == {
        "schema": ["EMAIL", "PHONE"],
        "data": [[m["email"], m["phone"]] for m in batch1],
    }
    assert json.loads(add1["session"]) == {
        "session_id": 77, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 5,
    }
    add2 = params(reqs[4])
    assert json.loads(add2["payload"]) == {
        "schema": ["EMAIL", "FN", "COUNTRY", "MADID", "EXTERN_ID"],
        "data": [
            [sha("user3@example.com"), sha("ann"), sha("us"), "ab-cd-ef", ""],
            ["", sha("bob"), "", "", "crm-42"],
        ],
    }
    assert json.loads(add2["session"])["batch_seq"] == 2
    assert json.loads(add2["session"])["last_batch_flag"] is True

    assert params(reqs[5])["fields"] == (
        "name,approximate_count_lower_bound,approximate_count_upper_bound,delivery_status,operation_status"
    )
    # Removal rows travel in the DELETE body (10,000 rows do not fit in a URL), not in the query string.
    remove = reqs[6]
    assert "payload" not in remove.query
    assert json.loads(remove.form()["payload"]) == {
        "schema": ["EMAIL", "PHONE"], "data": [[batch1[0]["email"], batch1[0]["phone"]]],
    }
    assert json.loads(remove.form()["session"])["session_id"] == 78


def test_values_are_sent_exactly_as_given_never_rehashed(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("A")
    hashed = sha("alice@example.com")
    meta.add_members(audience_id, [{"email": hashed, "maid": "6d92078a-8246-4ba4-ae5b-76104861e7dc"}])
    payload = json.loads(params(meta_graph.requests[-1])["payload"])
    assert payload["data"] == [[hashed, "6d92078a-8246-4ba4-ae5b-76104861e7dc"]]
    assert meta_graph.audience_values(audience_id, "EMAIL") == {hashed}


def test_a_full_batch_of_ten_thousand_rows_goes_in_one_request_and_a_larger_one_is_refused(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("Big")
    rows = [{"email": sha(f"u{i}@example.com")} for i in range(10_000)]
    assert meta.add_members(audience_id, rows).received == 10_000
    assert meta.remove_members(audience_id, rows).received == 10_000
    assert meta_graph.received_rows == {"add": 10_000, "remove": 10_000, "replace": 0}
    assert meta_graph.audience_members(audience_id) == set()
    with pytest.raises(PermanentError, match="at most 10,000"):
        meta.add_members(audience_id, rows + [{"email": sha("one-too-many")}])


def test_invalid_entries_are_reported_without_the_values(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("A")
    result = meta.add_members(audience_id, [{"email": "alice@example.com"}, {"email": sha("bob@example.com")}])
    assert (result.received, result.invalid) == (2, 1)
    assert result.messages and "alice" not in " ".join(result.messages)
    assert "SHA-256" in result.messages[0]


def test_replace_session_leaves_exactly_the_new_members(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("Mirror")
    meta.add_members(audience_id, [member(1), member(2)])
    meta.replace_members(audience_id, [member(2)], session=UploadSession(9, 1, False, 2))
    assert len(meta_graph.audience_members(audience_id)) == 2  # unchanged until the last batch
    meta.replace_members(audience_id, [member(3)], session=UploadSession(9, 2, True, 2))
    assert meta_graph.audience_values(audience_id, "EMAIL") == {member(2)["email"], member(3)["email"]}
    request = meta_graph.requests[-1]
    assert (request.method, request.path) == ("POST", f"/v26.0/{audience_id}/usersreplace")
    assert json.loads(params(request)["session"]) == {
        "session_id": 9, "batch_seq": 2, "last_batch_flag": True, "estimated_num_total": 2,
    }


def test_status_without_an_estimate_reports_no_size(meta_graph):
    meta_graph.min_reportable = 1000
    meta = adapter()
    audience_id = meta.create_audience("Small")
    meta.add_members(audience_id, [member(1)])
    status = meta.status(audience_id)
    assert (status.size, status.size_lower, status.size_upper) == (None, None, None)
    assert status.state == "Normal"


def test_ad_account_id_without_prefix_is_addressed_as_act(meta_graph):
    assert adapter(ad_account_id="1234567890").validate_credentials().details["ad_account_id"] == "act_1234567890"


# Typed errors ------------------------------------------------------------------------------
def test_expired_token_is_an_auth_error(meta_graph):
    with pytest.raises(AuthError) as caught:
        adapter(access_token=EXPIRED_TOKEN).validate_credentials()
    assert caught.value.code == 190
    assert "Session has expired" in caught.value.message


def test_wrong_app_secret_is_an_auth_error_from_the_refused_appsecret_proof(meta_graph):
    with pytest.raises(AuthError) as caught:
        adapter(app_secret="not-the-secret").validate_credentials()
    assert "appsecret_proof" in caught.value.message and "App secret" in caught.value.message


def test_disabled_ad_account_fails_validation(meta_graph):
    meta_graph.accounts["act_1234567890"]["account_status"] = 2
    with pytest.raises(AuthError, match="disabled"):
        adapter().validate_credentials()


def test_custom_audience_throttle_80003_waits_as_the_usage_header_says(meta_graph):
    usage = {"1234567890": [{"type": "custom_audience", "call_count": 100, "total_cputime": 10, "total_time": 12,
                             "estimated_time_to_regain_access": 7}]}
    meta_graph.inject(Fault(response=meta_graph.error_response(
        80003, "There have been too many calls to this ad-account. Wait a bit and try again.", subcode=2446079,
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)})))
    with pytest.raises(RateLimited) as caught:
        adapter().create_audience("A")
    assert caught.value.retry_after == 7 * 60
    assert caught.value.code == 80003


def test_ad_account_throttle_613_uses_the_ad_account_usage_reset_time(meta_graph):
    meta_graph.inject(Fault(response=meta_graph.error_response(
        613, "Calls to this api have exceeded the rate limit.", subcode=1487742,
        headers={"X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 100, "reset_time_duration": 45})})))
    with pytest.raises(RateLimited) as caught:
        adapter().create_audience("A")
    assert caught.value.retry_after == 45


def test_user_request_limit_17_without_headers_waits_the_default(meta_graph):
    meta_graph.inject(Fault(response=meta_graph.error_response(17, "User request limit reached", subcode=2446079)))
    with pytest.raises(RateLimited) as caught:
        adapter().validate_credentials()
    assert caught.value.retry_after == 60


def test_invalid_parameter_100_is_permanent_with_metas_message(meta_graph):
    meta = adapter()
    with pytest.raises(PermanentError) as caught:
        meta.status("999")  # no such audience
    assert "does not exist" in caught.value.message and caught.value.code == 100


def test_server_error_500_is_transient(meta_graph):
    meta_graph.inject(Fault(response=meta_graph.error_response(
        2, "An unexpected error has occurred. Please retry your request later.", status=500, is_transient=True)))
    with pytest.raises(TransientError):
        adapter().create_audience("A")


def test_non_json_500_page_is_transient_not_a_success(meta_graph):
    from sandbox.base import FakeResponse

    meta_graph.inject(Fault(response=FakeResponse(500, "Internal Server Error")))
    with pytest.raises(TransientError):
        adapter().add_members("1", [member(1)])


def test_dropped_connection_is_transient(meta_graph):
    meta_graph.inject(Fault(drop=True))
    with pytest.raises(TransientError):
        adapter().validate_credentials()


def test_terms_not_accepted_is_permanent_and_links_the_terms_page(meta_graph):
    meta_graph.accounts["act_1234567890"]["custom_audience_tos"] = False
    meta = adapter()
    assert meta.validate_credentials().details["custom_audience_terms_accepted"] is False
    with pytest.raises(PermanentError) as caught:
        meta.create_audience("A")
    assert "https://business.facebook.com/ads/manage/customaudiences/tos/?act=1234567890" in caught.value.message


def test_no_error_message_carries_a_secret(meta_graph):
    secrets = (CREDS["access_token"], CREDS["app_secret"], PROOF)
    scripted = [
        Fault(drop=True),
        Fault(response=meta_graph.error_response(190, "Invalid OAuth access token - Cannot parse access token")),
        Fault(response=meta_graph.error_response(80003, "Too many calls")),
        Fault(response=meta_graph.error_response(100, "Invalid parameter")),
        Fault(response=meta_graph.error_response(1, "Unknown error", status=500)),
    ]
    messages = []
    for fault in scripted:
        meta_graph.inject(fault)
        with pytest.raises(PlatformError) as caught:
            adapter().add_members("1", [member(1)])
        messages.append(f"{caught.value.message} {caught.value.args!r} {caught.value!s}")
    for bad in ({"access_token": EXPIRED_TOKEN}, {"app_secret": "wrong"}):
        with pytest.raises(PlatformError) as caught:
            adapter(**bad).validate_credentials()
        messages.append(f"{caught.value.message} {caught.value.args!r}")
    assert len(messages) == 7
    for message in messages:
        assert not any(secret in message for secret in secrets), message


def test_timeout_setting_reaches_the_sdk_session(settings):
    settings.PLATFORM_HTTP_TIMEOUT = 4.5
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": BASE}
    api = adapter().api
    assert api._session.timeout == 4.5
    assert api._session.GRAPH == BASE


# Over real HTTP ------------------------------------------------------------------------------
def test_full_cycle_over_loopback_http():
    fake = FakeMetaGraph()
    with FakeServer([fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={"meta": f"{server.url}/meta"}, PLATFORM_HTTP_TIMEOUT=10
    ):
        meta = adapter()
        meta.validate_credentials()
        audience_id = meta.create_audience("Loopback")
        rows = [{"email": sha(f"u{i}@example.com"), "phone": sha(f"1555{i:07d}")} for i in range(10_000)]
        assert meta.add_members(audience_id, rows[:6000], session=UploadSession(1, 1, False, 10_000)).received == 6000
        assert meta.add_members(audience_id, rows[6000:], session=UploadSession(1, 2, True, 10_000)).received == 4000
        status = meta.status(audience_id)
        assert 6000 < status.size < 8000  # ~70% matched
        assert meta.remove_members(audience_id, rows[:5000]).received == 5000
        assert len(fake.audience_members(audience_id)) == 5000
        meta.delete_audience(audience_id)
        assert fake.audiences == {}


@pytest.mark.parametrize(
    ("code", "subcode", "status", "expected"),
    [
        (190, 460, 400, AuthError),  # token invalidated (password changed)
        (102, None, 400, AuthError),  # session key invalid
        (10, None, 400, AuthError),  # app lacks the permission
        (200, None, 403, AuthError),  # system user not assigned to the ad account
        (4, None, 400, RateLimited),  # app request limit
        (17, 2446079, 400, RateLimited),
        (32, None, 400, RateLimited),
        (613, None, 400, RateLimited),
        (80003, None, 400, RateLimited),
        (80004, None, 400, RateLimited),  # other business-use-case throttles
        (1, None, 400, TransientError),
        (2, None, 503, TransientError),
        (100, 1713230, 400, PermanentError),  # audience upload blocked
        (2650, None, 400, PermanentError),
        (200, 1870090, 400, PermanentError),  # terms first, even under a permission code
    ],
)
def test_graph_error_codes_map_to_typed_errors(meta_graph, code, subcode, status, expected):
    meta_graph.inject(Fault(response=meta_graph.error_response(code, f"(#{code}) Meta says no", subcode=subcode,
                                                               status=status)))
    with pytest.raises(PlatformError) as caught:
        adapter().add_members("1", [member(1)])
    assert type(caught.value) is expected
    assert f"(#{code}) Meta says no" in caught.value.message


def test_resending_a_batch_with_the_same_session_and_sequence_does_not_duplicate(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("Retry")
    batch = [member(1), member(2)]
    meta.add_members(audience_id, batch, session=UploadSession(5, 1, True, 2))
    meta.add_members(audience_id, batch, session=UploadSession(5, 1, True, 2))  # the engine's retry
    assert len(meta_graph.audience_members(audience_id)) == 2


def test_adapter_never_installs_the_sdk_default_api_or_crash_reporter(meta_graph):
    import sys

    from facebook_business.api import FacebookAdsApi

    hook = sys.excepthook
    adapter().validate_credentials()
    assert FacebookAdsApi.get_default_api() is None
    assert sys.excepthook is hook


# The fake's own strictness -------------------------------------------------------------------
def graph_post(path: str, **data):
    import requests

    data = {"access_token": CREDS["access_token"], "appsecret_proof": PROOF, **data}
    return requests.post(f"{BASE}/v26.0/{path}", data=data, timeout=5)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"schema": ["EMAIL", "PHONE"], "data": [[sha("a")]]}, "does not match schema"),
        ({"schema": ["EMAIL", "DOB"], "data": [[sha("a"), "19800101"]]}, "Invalid schema: DOB"),
        ({"schema": ["EMAIL"], "data": [[sha(str(i))] for i in range(10_001)]}, "Too many users"),
        ({"schema": ["EMAIL"], "data": []}, "Data is missing"),
    ],
)
def test_fake_refuses_malformed_payloads_with_graph_errors(meta_graph, payload, fragment):
    audience_id = adapter().create_audience("Strict")
    answer = graph_post(f"{audience_id}/users", payload=json.dumps(payload))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 100 and fragment in error["message"] and error["fbtrace_id"]


def test_fake_requires_a_valid_appsecret_proof_and_api_version(meta_graph):
    import requests

    no_proof = requests.get(f"{BASE}/v26.0/me", params={"access_token": CREDS["access_token"]}, timeout=5)
    assert no_proof.json()["error"]["message"] == "API calls from the server require an appsecret_proof argument"
    old = requests.get(f"{BASE}/v19.0/me", params={"access_token": CREDS["access_token"], "appsecret_proof": PROOF},
                       timeout=5)
    assert old.json()["error"]["code"] == 2635


def test_a_slow_answer_beyond_the_timeout_is_transient_over_loopback():
    fake = FakeMetaGraph()
    fake.inject(Fault(delay=0.3, response=fake.error_response(1, "late")))
    with FakeServer([fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={"meta": f"{server.url}/meta"}, PLATFORM_HTTP_TIMEOUT=0.05
    ), pytest.raises(TransientError, match="did not answer within 0.05 s") as caught:
        adapter().validate_credentials()
    assert CREDS["access_token"] not in caught.value.message


FORM_VALUES = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False))


@given(st.dictionaries(st.text(max_size=20), FORM_VALUES, max_size=5))
def test_form_encode_equals_urlencode(fields):
    from urllib.parse import urlencode

    from platforms.adapters.meta import form_encode

    assert form_encode(fields) == urlencode(fields)


def test_form_encode_equals_urlencode_on_a_member_payload():
    from urllib.parse import urlencode

    from platforms.adapters.meta import build_payload, form_encode

    batch = [{"email": "a" * 64, "phone": "b" * 64, "external_id": "CR-1 ü&=+/%"}, {"email": "c" * 64}]
    fields = {"payload": json.dumps(build_payload(batch)), "session": json.dumps({"session_id": 7, "batch_seq": 1})}
    assert form_encode(fields) == urlencode(fields)


def test_a_removal_row_removes_every_member_holding_one_of_its_identifiers(meta_graph):
    meta = adapter()
    audience_id = meta.create_audience("Shared")
    shared = sha("family@example.com")
    meta.add_members(audience_id, [
        {"email": shared, "phone": sha("15550000001")},
        {"email": shared, "phone": sha("15550000002")},  # another row naming the same address
        {"email": sha("solo@example.com"), "first_name": sha("ann")},
        {"maid": "ab-cd", "first_name": sha("bob")},
    ])
    before = meta.status(audience_id)
    # A row holding only the shared address takes both; the first name alone removes nobody.
    meta.remove_members(audience_id, [{"email": shared}, {"first_name": sha("ann")}])
    assert meta_graph.audience_values(audience_id, "EMAIL") == {sha("solo@example.com")}
    meta.remove_members(audience_id, [{"maid": "ab-cd"}])
    assert meta_graph.audience_values(audience_id, "MADID") == set()
    assert len(meta_graph.audience_members(audience_id)) == 1
    # Removing someone absent changes nothing; adding the same row twice counts it once.
    meta.remove_members(audience_id, [{"email": sha("nobody@example.com")}])
    meta.add_members(audience_id, [{"email": shared}, {"email": shared}])
    assert len(meta_graph.audience_members(audience_id)) == 2
    # The fake's matched count follows the membership (it is kept, not recounted).
    roster = meta_graph.members[audience_id]
    assert roster.matched == sum(meta_graph._matched(m) for m in roster.members)
    assert before.size is not None
