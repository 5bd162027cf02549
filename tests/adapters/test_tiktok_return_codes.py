"""TikTok's return codes as the adapter types them, each answered by the fake (TikTok's own messages).

Codes and meanings: TikTok's "Appendix - Return Codes" (https://business-api.tiktok.com/portal/docs?id=1737172488964097)
and its SDK's ``tiktok_code.py``; see platforms/adapters/tiktok.py.
"""

from __future__ import annotations

import hashlib

import pytest
import responses

from platforms.adapters import get_adapter_class
from platforms.adapters.tiktok import PARTIAL_SUCCESS, typed_error
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from sandbox.base import Fault, install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.tiktok import RETURN_CODES, FakeTikTok

HOST = "https://business-api.tiktok.test/tiktok"
BASE = HOST + "/open_api/v1.3"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["tiktok"].items() if k != "label"}
ADV = CREDS["advertiser_id"]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def person(n: int) -> dict:
    return {"email": sha(f"user{n}@example.com"), "phone": sha(f"1555000{n:04d}")}


@pytest.fixture
def tt(settings):
    fake = FakeTikTok()
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "tiktok": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, HOST)
        yield fake


def adapter():
    return get_adapter_class("tiktok")(CREDS)


@pytest.mark.parametrize(("code", "error"), [
    (40016, RateLimited), (40100, RateLimited), (40133, RateLimited), (61000, RateLimited),
    (40201, TransientError), (40202, TransientError), (60001, TransientError), (52001, TransientError),
    (40106, AuthError), (40113, AuthError), (40119, AuthError), (40300, PermanentError), (40007, PermanentError),
])
def test_return_codes_are_typed_by_what_tiktok_says_to_do(code, error):
    assert type(typed_error(code, "m")) is error


@pytest.mark.parametrize("code", [40016, 40100, 40133])
def test_throttling_codes_from_the_fake_are_rate_limited_with_tiktoks_message(tt, code):
    tt.answer_next(code)
    with pytest.raises(RateLimited) as info:
        adapter().validate_credentials()
    assert info.value.code == code and info.value.retry_after == 60
    assert RETURN_CODES[code].rstrip(".") in info.value.message


def test_a_throttled_answer_honours_retry_after(tt):
    tt.answer_next(40133, headers={"Retry-After": "3"})
    with pytest.raises(RateLimited) as info:
        adapter().validate_credentials()
    assert info.value.retry_after == 3


@pytest.mark.parametrize("code", [40202, 60001])
def test_write_conflict_and_maintenance_are_retried(tt, code):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Retry me")
    tt.answer_next(code, path="/segment/mapping/")
    with pytest.raises(TransientError) as info:
        tt_adapter.add_members(audience_id, [person(1)])
    assert info.value.code == code
    assert tt.audience_members(audience_id) == set()
    tt_adapter.add_members(audience_id, [person(1)])  # the engine's retry goes through
    assert len(tt.audience_members(audience_id)) == 2


def test_the_fakes_advertiser_qps_limit_answers_40133_as_tiktok_words_it(tt):
    tt.advertiser_qps = 2
    tt_adapter = adapter()
    tt_adapter.validate_credentials()
    tt_adapter.validate_credentials()
    with pytest.raises(RateLimited) as info:
        tt_adapter.validate_credentials()
    assert info.value.code == 40133
    assert f"Advertiser ({ADV})'s QPS (3) reaches QPS limit 2 for current path" in info.value.message


def test_a_partial_success_counts_the_people_tiktok_refused(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Partial")
    batch = [person(n) for n in range(5)]
    tt.refuse_ids = {batch[1]["email"], batch[3]["phone"]}
    result = tt_adapter.add_members(audience_id, batch)
    assert (result.received, result.invalid) == (5, 2)
    assert any("TikTok refused 2 of 5 people" in m and "code 20001" in m for m in result.messages)
    kept = {value for _, value in tt.audience_members(audience_id)}
    assert kept == {p[k] for i, p in enumerate(batch) if i not in (1, 3) for k in ("email", "phone")}


def test_a_partial_success_without_a_list_of_refusals_says_so(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Partial, silent")
    tt.inject(Fault(response=tt.error_response(PARTIAL_SUCCESS, RETURN_CODES[PARTIAL_SUCCESS]),
                    path_regex="/segment/mapping/"))
    result = tt_adapter.add_members(audience_id, [person(1), person(2)])
    assert (result.received, result.invalid) == (2, 0)
    assert any("only in part" in m and "did not say which people" in m for m in result.messages)


def test_a_partial_answer_naming_ids_we_did_not_send_counts_one_person_each(tt):
    tt_adapter = adapter()
    audience_id = tt_adapter.create_audience("Partial, unknown ids")
    tt.inject(Fault(response=tt.error_response(PARTIAL_SUCCESS, "Partially successful.", data={"error_list": [
        {"obj_id": sha("someone-else"), "error_message": "x"}]}), path_regex="/segment/mapping/"))
    result = tt_adapter.add_members(audience_id, [person(1), person(2)])
    assert result.invalid == 1
