"""The Trade Desk: the advertiser's data region is the connection's (no silent "US"); an EU advertiser's data goes
through EUID as emails only; the fake refuses what TTD refuses for a region."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import responses

from platforms import matchkeys
from platforms.adapters import get_adapter_class
from platforms.errors import PermanentError
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.ttd import FakeTradeDesk

HOST = "https://ttd.test/ttd"
BASE = HOST + "/v3"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["ttd"].items() if k != "label"}


def b64sha(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()


@pytest.fixture
def ttd(settings):
    fake = FakeTradeDesk(public_url=HOST)
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "ttd": BASE}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, HOST)
        yield fake


def adapter(**overrides):
    values = {**CREDS, **overrides}
    return get_adapter_class("ttd")({k: v for k, v in values.items() if v is not None})


def form(**overrides):
    return get_adapter_class("ttd").credentials_form(data={**DEMO_CREDENTIALS["ttd"], **overrides})


def test_the_form_has_no_default_region_and_takes_us_eu_or_apac():
    assert form(region="").is_valid() is False
    assert form(region="LATAM").is_valid() is False
    for region in ("US", "EU", "APAC"):
        bound = form(region=region)
        assert bound.is_valid(), bound.errors
        assert bound.split()[1]["region"] == region
    field = get_adapter_class("ttd").credentials_form.base_fields["region"]
    assert field.initial is None and "EUID" in field.help_text


def test_a_connection_without_a_region_is_refused_before_anything_is_sent(ttd):
    with pytest.raises(PermanentError) as info:
        adapter(region=None).create_audience("Where?")
    assert info.value.code == "REGION_MISSING" and "EUID" in info.value.message
    assert ttd.requests == []
    assert adapter(region=None).validate_credentials().details["region"] == "not set"


@pytest.mark.parametrize("region", ["US", "EU", "APAC"])
def test_the_segment_is_created_in_the_connections_region(ttd, region):
    crm_id = adapter(region=region).create_audience(f"{region} list")
    assert ttd.segments[crm_id]["Region"] == region
    body = json.loads(ttd.requests[-1].body)
    assert body["Region"] == region


def test_an_eu_advertisers_phones_are_held_back_and_the_batch_says_so(ttd):
    stored = matchkeys.prepare_record({"email": "Jane.Saoirse+Work@gmail.com", "phone": "+44 20 7946 0958"},
                                      default_region="GB").stored
    values = matchkeys.platform_values("ttd", stored)
    # EUID normalizes and encodes as UID2 does: EUID's own vector for this address.
    assert values["email"] == "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8="
    eu = adapter(region="EU")
    crm_id = eu.create_audience("EU list")
    result = eu.add_members(crm_id, [values])
    assert (result.received, result.invalid) == (1, 0)
    assert any("1 people's phone numbers were not sent" in m and "EU" in m for m in result.messages)
    assert [d["pii"] for d in ttd.drops] == ["EmailHashedUnifiedId2"]


def test_the_fake_refuses_a_phone_drop_for_an_eu_segment(ttd):
    crm_id = adapter(region="EU").create_audience("EU list")
    session = adapter(region="EU").session
    response = session.post(f"{BASE}/crmdata/segment/{CREDS['advertiser_id']}/{crm_id}",
                            json={"PiiType": "PhoneNumberHashedUnifiedId2", "MergeMode": "Add"})
    assert response.status_code == 400
    assert "Phone numbers cannot be uploaded to EU segments" in json.dumps(response.json())


def test_the_fake_refuses_a_region_ttd_does_not_have(ttd):
    session = adapter().session
    response = session.post(f"{BASE}/crmdata/segment", json={
        "AdvertiserId": CREDS["advertiser_id"], "SegmentName": "x", "Region": "LATAM"})
    assert response.status_code == 400 and "Region must be one of APAC, EU, US" in json.dumps(response.json())

