"""LinkedIn: the partner's sourcePlatform, what kind the mobile ids are, the segment description -- and the fake
refusing what LinkedIn refuses (an unknown or missing sourcePlatform, idTypes it does not take)."""

from __future__ import annotations

import hashlib
import json

import pytest
import responses

from platforms.adapters import get_adapter_class
from platforms.errors import PermanentError
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.linkedin import FakeLinkedIn

HOST = "https://api.linkedin.test/linkedin"
BASE = HOST + "/rest"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["linkedin"].items() if k != "label"}
GAID = "6d92078a-8246-4ba4-ae5b-76104861e7dc"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def li(settings):
    fake = FakeLinkedIn()
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "linkedin": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, HOST)
        yield fake


def adapter(**overrides):
    values = {**CREDS, **overrides}
    return get_adapter_class("linkedin")({k: v for k, v in values.items() if v is not None})


def form(**overrides):
    return get_adapter_class("linkedin").credentials_form(data={**DEMO_CREDENTIALS["linkedin"], **overrides})


def test_the_form_requires_the_source_platform_linkedin_assigned():
    bound = form(source_platform="")
    assert not bound.is_valid() and "source_platform" in bound.errors


def test_the_form_uppercases_the_source_platform_and_refuses_what_is_not_an_enum_value():
    bound = form(source_platform=" acme_audiences ")
    assert bound.is_valid(), bound.errors
    assert bound.split()[1]["source_platform"] == "ACME_AUDIENCES"
    bad = form(source_platform="Acme Audiences!")
    assert not bad.is_valid() and "capital letters" in bad.errors["source_platform"][0]


def test_the_form_asks_what_the_mobile_ids_are_and_keeps_the_answer():
    assert form(mobile_ids="none").is_valid()
    assert not form(mobile_ids="ios").is_valid()
    bound = form(mobile_ids="android")
    assert bound.is_valid()
    assert bound.split()[1]["mobile_ids"] == "android"


def test_a_connection_without_a_source_platform_is_refused_before_anything_is_sent(li):
    with pytest.raises(PermanentError) as info:
        adapter(source_platform=None).create_audience("No source")
    assert info.value.code == "SOURCE_PLATFORM_MISSING"
    assert "sourcePlatform value it assigned your app" in info.value.message
    assert li.requests == []


def test_linkedins_refusal_of_a_source_platform_says_which_and_where_to_fix_it(li):
    with pytest.raises(PermanentError) as info:
        adapter(source_platform="SOMEONE_ELSE").create_audience("Wrong source")
    assert "'SOMEONE_ELSE'" in info.value.message and "assigned your app" in info.value.message
    assert info.value.code == 422 and li.segments == {}


def test_the_fake_refuses_a_segment_without_a_source_platform(li):
    li_adapter = adapter()
    response = li_adapter.session.post(BASE + "/dmpSegments", json={
        "name": "x", "account": "urn:li:sponsoredAccount:508123456", "type": "USER",
        "destinations": [{"destination": "LINKEDIN"}]})
    assert response.status_code == 422 and "/sourcePlatform is required" in response.json()["message"]


def test_the_segment_takes_the_audiences_description_and_an_empty_one_is_left_out(li):
    li_adapter = adapter()
    with_text = li_adapter.create_audience("Described", "  Customers who bought twice  ")
    without = li_adapter.create_audience("Plain", "")
    bodies = [json.loads(r.body) for r in li.requests if r.path == "/rest/dmpSegments"]
    assert bodies[0]["description"] == "Customers who bought twice"
    assert "description" not in bodies[1]
    assert li.segments[with_text]["description"] == "Customers who bought twice"
    assert "description" not in li.segments[without]


def test_mobile_ids_are_sent_as_google_aid_only_when_the_connection_says_they_are_android_ids(li):
    batch = [{"email": sha("a@example.com"), "maid": GAID}, {"maid": "11111111-2222-4333-8444-555555555555"}]
    android = adapter(mobile_ids="android")
    segment = android.create_audience("Android")
    result = android.add_members(segment, batch)
    assert (result.received, result.invalid) == (2, 0)
    assert ("GOOGLE_AID", GAID) in li.audience_members(segment)

    unsure = adapter(mobile_ids="none")
    segment = unsure.create_audience("Not said")
    result = unsure.add_members(segment, batch)
    assert (result.received, result.invalid) == (2, 1)  # the id-only person cannot be sent
    assert li.audience_members(segment) == {("SHA256_EMAIL", sha("a@example.com"))}
    assert any("2 people's mobile advertiser ids were not sent" in m and "Android" in m for m in result.messages)


def test_a_connection_stored_before_the_choice_sends_no_mobile_ids(li):
    legacy = adapter(mobile_ids=None)
    segment = legacy.create_audience("Legacy")
    legacy.add_members(segment, [{"email": sha("b@example.com"), "maid": GAID}])
    assert li.audience_members(segment) == {("SHA256_EMAIL", sha("b@example.com"))}


@pytest.mark.parametrize(("id_type", "value", "reason"), [
    ("APPLE_IDFA", GAID.upper(), "APPLE_IDFA is no longer supported"),
    ("IDFA", GAID, "idType is invalid"),
    ("GOOGLE_AID", "not-a-uuid", "not a valid GOOGLE_AID"),
    ("SHA256_EMAIL", "ABC", "not a valid SHA256_EMAIL"),
])
def test_the_fake_refuses_the_id_types_and_values_linkedin_refuses(li, id_type, value, reason):
    li_adapter = adapter()
    segment = li_adapter.create_audience("Refusals")
    response = li_adapter.session.post(
        f"{BASE}/dmpSegments/{segment}/users", headers={"X-RestLi-Method": "BATCH_CREATE"},
        json={"elements": [{"action": "ADD", "userIds": [{"idType": id_type, "idValue": value}]}]})
    element = response.json()["elements"][0]
    assert element["status"] == 400 and reason in element["error"]["message"]
    assert li.audience_members(segment) == set()
