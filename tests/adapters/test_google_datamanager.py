"""The Google Data Manager adapter through its public interface, against the loopback gRPC fake (real protos) and
the fake OAuth endpoint: the full cycle with the exact requests Google received, and one test per typed error."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from platforms.adapters import get_adapter_class
from platforms.adapters.base import Operation
from platforms.adapters.google_datamanager import (
    MAX_MEMBERS_PER_REQUEST,
    GoogleDataManagerAdapter,
    GoogleDataManagerCredentialsForm,
    seconds_until_pacific_midnight,
)
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from platforms.matchkeys import platform_values, prepare_record
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.google_datamanager import MANAGER_ID, FakeDataManagerServer
from sandbox.google_oauth import FakeGoogleOAuth, access_token_for

CREDS = {k: v for k, v in DEMO_CREDENTIALS["google_dm"].items() if k != "label"}
CUSTOMER = "1234567890"
_names = itertools.count(1)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int, *, address: bool = False) -> dict:
    values = {"email": sha(f"user{n}@example.com"), "phone": sha(f"+1555{n:07d}")}
    if address:
        values.update(first_name=sha(f"ann{n}"), last_name=sha("lee"), country="US", postal_code="94043")
    return values


@pytest.fixture(scope="module")
def servers():
    oauth = FakeGoogleOAuth()
    http = FakeServer([oauth]).start()
    dm = FakeDataManagerServer().start()
    yield SimpleNamespace(oauth=oauth, http=http, dm=dm)
    dm.stop()
    http.stop()


@pytest.fixture
def google(servers, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_dm": servers.dm.address}
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{servers.http.url}/google-oauth/token"
    dm = servers.dm
    dm.reset_calls()
    dm.faults.clear()
    dm.process_immediately = True
    for account in dm.accounts.values():
        account.update(terms_accepted=True, manager_only=False)
    dm.accounts[CUSTOMER]["eea"] = True
    return dm


@pytest.fixture
def make_adapter(google):
    adapters = []

    def make(**overrides):
        adapter = GoogleDataManagerAdapter({**CREDS, "customer_id": CUSTOMER, **overrides})
        adapters.append(adapter)
        return adapter

    yield make
    for adapter in adapters:
        adapter.close()


def new_list(adapter) -> str:
    return adapter.create_audience(f"Loyal customers {next(_names)}", "Buyers of the last year")


# --- registration, capabilities, form ---------------------------------------------------------------------


def test_registered_with_code_name_and_capabilities():
    adapter_class = get_adapter_class("google_dm")
    assert adapter_class is GoogleDataManagerAdapter
    assert adapter_class.name == "Google (Data Manager API)"
    caps = adapter_class.capabilities
    assert caps.batch_size == MAX_MEMBERS_PER_REQUEST == 10_000
    assert (caps.rate_limit.requests, caps.rate_limit.per_seconds) == (300, 60)
    assert set(adapter_class.match_keys) == {"email", "phone", "first_name", "last_name", "country", "postal_code"}
    assert Operation.DELETE in caps.operations


def test_form_has_no_developer_token_and_no_granted_default():
    form = GoogleDataManagerCredentialsForm()
    assert "developer_token" not in form.fields
    for name in ("consent_ad_user_data", "consent_ad_personalization"):
        assert form.fields[name].required and not form.fields[name].initial
        assert "EU user consent policy" in " ".join(form.help_steps) + form.fields[name].help_text
    missing = dict(DEMO_CREDENTIALS["google_dm"], consent_ad_personalization="")
    bound = GoogleDataManagerCredentialsForm(data=missing)
    assert not bound.is_valid() and "consent_ad_personalization" in bound.errors


def test_form_checks_the_service_account_key_and_the_oauth_fields():
    base = dict(DEMO_CREDENTIALS["google_dm"], auth_method="service_account", service_account_key="{not json")
    form = GoogleDataManagerCredentialsForm(data=base)
    assert not form.is_valid() and "does not parse" in str(form.errors["service_account_key"])
    form = GoogleDataManagerCredentialsForm(data=dict(base, service_account_key=json.dumps({"type": "user"})))
    assert not form.is_valid() and "not a service-account key" in str(form.errors["service_account_key"])
    form = GoogleDataManagerCredentialsForm(data=dict(DEMO_CREDENTIALS["google_dm"], refresh_token=""))
    assert not form.is_valid() and "refresh_token" in form.errors
    form = GoogleDataManagerCredentialsForm(data=dict(DEMO_CREDENTIALS["google_dm"]))
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    assert set(secrets) == {"client_secret", "refresh_token"}
    assert config["customer_id"] == CUSTOMER and config["customer_match_terms"] is True


# --- the full cycle ------------------------------------------------------------------------------------------


def test_full_cycle_sends_exactly_what_google_expects(google, make_adapter):
    adapter = make_adapter()
    assert adapter.validate_credentials().account_name == "Google Ads 123-456-7890"
    list_name = new_list(adapter)
    assert list_name.startswith(f"accountTypes/GOOGLE_ADS/accounts/{CUSTOMER}/userLists/")
    created = google.calls_to("CreateUserList")[0].request
    assert created.parent == f"accountTypes/GOOGLE_ADS/accounts/{CUSTOMER}"
    assert created.user_list.ingested_user_list_info.upload_key_types[0].name == "CONTACT_ID"
    assert created.user_list.ingested_user_list_info.contact_id_info.data_source_type.name == \
        "DATA_SOURCE_TYPE_FIRST_PARTY"
    assert created.user_list.membership_duration.total_seconds() == 540 * 86_400

    batch = [member(n, address=n % 2 == 0) for n in range(4)]
    result = adapter.add_members(list_name, batch)
    assert (result.received, result.invalid, len(result.request_ids)) == (4, 0, 1)
    call = google.calls_to("IngestAudienceMembers")[0]
    request = call.request
    assert call.metadata["authorization"] == f"Bearer {access_token_for(CREDS['refresh_token'])}"
    assert "developer-token" not in call.metadata
    (destination,) = request.destinations
    assert destination.operating_account.account_type.name == "GOOGLE_ADS"
    assert destination.operating_account.account_id == CUSTOMER
    assert destination.product_destination_id == list_name.rsplit("/", 1)[1]
    assert "login_account" not in destination
    assert request.encoding.name == "HEX"
    assert (request.consent.ad_user_data.name, request.consent.ad_personalization.name) == \
        ("CONSENT_GRANTED", "CONSENT_GRANTED")
    assert request.terms_of_service.customer_match_terms_of_service_status.name == "ACCEPTED"
    first, second = request.audience_members[0], request.audience_members[1]
    assert [(i.email_address, i.phone_number) for i in first.user_data.user_identifiers][:2] == [
        (batch[0]["email"], ""), ("", batch[0]["phone"])]
    address = first.user_data.user_identifiers[2].address
    assert (address.given_name, address.family_name, address.region_code, address.postal_code) == (
        sha("ann0"), sha("lee"), "US", "94043")
    assert len(second.user_data.user_identifiers) == 2  # no address without all four parts
    assert google.list_identifiers(list_name, "email_address") == {m["email"] for m in batch}

    diagnostics = adapter.request_status(result.request_ids[0])
    (dest,) = diagnostics.destinations
    assert (dest.status, dest.kind, dest.records, dest.identifiers) == ("SUCCESS", "ingest", 4, 10)
    assert dest.match_rate_range.startswith("MATCH_RATE_RANGE_") and diagnostics.done
    assert "4 record(s), 10 identifier(s)" in diagnostics.messages()[0]

    status = adapter.status(list_name)
    assert status.raw["name"].startswith("Loyal customers") and status.state == "open"
    assert status.size is not None and status.size <= 4

    removed = adapter.remove_members(list_name, [{"email": batch[1]["email"]}])
    remove_request = google.calls_to("RemoveAudienceMembers")[0].request
    assert [i.email_address for i in remove_request.audience_members[0].user_data.user_identifiers] == [
        batch[1]["email"]]
    assert adapter.request_status(removed.request_ids[0]).destinations[0].kind == "remove"
    assert google.list_identifiers(list_name, "email_address") == {batch[n]["email"] for n in (0, 2, 3)}

    adapter.delete_audience(list_name)
    assert list_name not in google.user_lists
    assert google.calls_to("DeleteUserList")[0].request.name == list_name


def test_a_removal_removes_every_record_matching_any_identifier(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    people = [member(1, address=True), member(2, address=True), {"email": sha("other@example.com")}]
    adapter.add_members(list_name, people)
    # One address identifier shared by two people (same first-name hash made equal on purpose):
    shared = dict(member(3, address=True), first_name=people[0]["first_name"])
    adapter.add_members(list_name, [shared])
    assert len(google.list_members(list_name)) == 4
    # Remove with only person 1's address: Google drops every record carrying that address (1 and 3).
    address_only = {k: people[0][k] for k in ("first_name", "last_name", "country", "postal_code")}
    adapter.remove_members(list_name, [address_only])
    remaining = google.list_identifiers(list_name, "email_address")
    assert remaining == {people[1]["email"], people[2]["email"]}


def test_a_removal_sends_the_address_only_for_members_without_email_or_phone(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    leaver, neighbour = member(1, address=True), dict(member(2, address=True), first_name=sha("ann1"))
    adapter.add_members(list_name, [leaver, neighbour])
    adapter.remove_members(list_name, [leaver])
    sent = google.calls_to("RemoveAudienceMembers")[0].request.audience_members[0].user_data.user_identifiers
    assert [("address" in i) for i in sent] == [False, False]
    assert google.list_identifiers(list_name, "email_address") == {neighbour["email"]}  # same address, kept


def test_manager_access_sends_the_login_account(google, make_adapter):
    google.accounts[CUSTOMER]["manager_only"] = True
    with pytest.raises(AuthError, match="PERMISSION_DENIED"):
        make_adapter().validate_credentials()
    adapter = make_adapter(login_customer_id=MANAGER_ID)
    adapter.validate_credentials()
    list_name = new_list(adapter)
    assert google.calls_to("CreateUserList")[-1].metadata["login-account"] == \
        f"accountTypes/GOOGLE_ADS/accounts/{MANAGER_ID}"
    adapter.add_members(list_name, [member(1)])
    destination = google.calls_to("IngestAudienceMembers")[-1].request.destinations[0]
    assert (destination.login_account.account_type.name, destination.login_account.account_id) == \
        ("GOOGLE_ADS", MANAGER_ID)


def test_service_account_key_signs_in_without_a_refresh_token(google, make_adapter, servers):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "uploader@demo-project.iam.gserviceaccount.com"
    token = servers.oauth.register_service_account(email, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    google.accept_token(token)
    info = {"type": "service_account", "project_id": "demo-project", "private_key_id": "k1",
            "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "client_email": email, "token_uri": "https://attacker.invalid/token"}
    adapter = make_adapter(auth_method="service_account", service_account_key=json.dumps(info), client_id="",
                           client_secret="", refresh_token="")
    adapter.validate_credentials()  # the key's own token_uri is never called: the setting's URL is
    assert google.calls_to("ListUserLists")[-1].metadata["authorization"] == f"Bearer {token}"
    assert adapter.account_id == "cloud-project:demo-project"


# --- consent -------------------------------------------------------------------------------------------------


def test_no_stated_consent_means_no_upload(google, make_adapter):
    adapter = make_adapter(consent_ad_user_data="")
    list_name = new_list(adapter)
    with pytest.raises(PermanentError, match="states no consent for ad user data") as caught:
        adapter.add_members(list_name, [member(1)])
    assert caught.value.code == "CONSENT_NOT_STATED"
    assert google.calls_to("IngestAudienceMembers") == []
    adapter.remove_members(list_name, [member(1)])  # removal needs none


def test_denied_consent_is_sent_and_google_reports_the_records_it_dropped(google, make_adapter):
    adapter = make_adapter(consent_ad_personalization="DENIED")
    list_name = new_list(adapter)
    result = adapter.add_members(list_name, [member(1), member(2)])
    assert google.calls_to("IngestAudienceMembers")[0].request.consent.ad_personalization.name == "CONSENT_DENIED"
    diagnostics = adapter.request_status(result.request_ids[0])
    assert diagnostics.destinations[0].status == "FAILED"
    assert diagnostics.destinations[0].errors == {"PROCESSING_ERROR_REASON_DENIED_CONSENT": 2}
    assert diagnostics.rejected == 2 and "DENIED_CONSENT ×2" in diagnostics.messages()[0]
    assert google.list_members(list_name) == []


def test_diagnostics_while_google_is_still_processing(google, make_adapter):
    google.process_immediately = False
    adapter = make_adapter()
    list_name = new_list(adapter)
    result = adapter.add_members(list_name, [member(1)])
    pending = adapter.request_status(result.request_ids[0])
    assert pending.destinations[0].status == "PROCESSING" and not pending.done
    google.finish_processing()
    assert adapter.request_status(result.request_ids[0]).done


# --- per-member problems -------------------------------------------------------------------------------------


def test_malformed_members_are_counted_locally_and_never_fail_the_request(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    bad = [{"email": "not-a-hash"}, {"country": "US"}, member(7)]
    result = adapter.add_members(list_name, bad)
    assert (result.received, result.invalid) == (3, 2)
    assert "2 member(s) not sent to Google" in result.messages[0]
    assert len(google.calls_to("IngestAudienceMembers")[0].request.audience_members) == 1


def test_members_google_names_in_its_refusal_are_dropped_and_the_rest_resent(google, make_adapter, monkeypatch):
    from platforms.adapters import google_datamanager_wire as module  # where the local hash check lives

    adapter = make_adapter()
    list_name = new_list(adapter)
    # A hash our local check lets through but Google refuses (uppercase hex of the wrong length).
    monkeypatch.setattr(module, "SHA256_HEX", __import__("re").compile(r"[0-9a-fA-F]+"))
    batch = [member(1), {"email": "ABCD"}, member(3)]
    result = adapter.add_members(list_name, batch)
    assert (result.received, result.invalid) == (3, 1)
    assert "INVALID_SHA256_FORMAT" in result.messages[0]
    calls = google.calls_to("IngestAudienceMembers")
    assert [len(c.request.audience_members) for c in calls] == [3, 2]
    assert google.list_identifiers(list_name, "email_address") == {batch[0]["email"], batch[2]["email"]}


def test_the_fake_refuses_what_google_refuses(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    too_many = [member(n) for n in range(MAX_MEMBERS_PER_REQUEST + 1)]
    with pytest.raises(PermanentError, match="at most 10,000"):
        adapter.add_members(list_name, too_many)
    # Straight to the wire: 10,001 members and 11 identifiers are Google's refusals, not only ours.
    from google.ads.datamanager_v1.types import audience, user_data

    ingestion_client, _ = adapter._clients()
    request = adapter._request("ingest", list_name, [audience.AudienceMember.pb()(user_data=user_data.UserData.pb()(
        user_identifiers=[user_data.UserIdentifier.pb()(email_address=sha(str(n)))])) for n in range(10_001)],
        adapter._consent())
    with pytest.raises(PermanentError, match="TOO_MANY_AUDIENCE_MEMBERS"):
        adapter._rpc("ingestion", "ingest_audience_members", request)
    eleven = [audience.AudienceMember.pb()(user_data=user_data.UserData.pb()(
        user_identifiers=[user_data.UserIdentifier.pb()(email_address=sha(str(n))) for n in range(11)]))]
    with pytest.raises(PermanentError, match="TOO_MANY_USER_IDENTIFIERS") as caught:
        adapter._rpc("ingestion", "ingest_audience_members", adapter._request("ingest", list_name, eleven,
                                                                              adapter._consent()))
    assert caught.value.violations[0].field == "audience_members[0].user_data.user_identifiers"
    assert google.list_members(list_name) == []


def test_a_list_of_another_customer_is_refused_before_sending(google, make_adapter):
    with pytest.raises(PermanentError, match="belongs to another customer"):
        make_adapter().add_members("accountTypes/GOOGLE_ADS/accounts/5555555555/userLists/1", [member(1)])


def test_terms_not_accepted_is_a_clear_permanent_error(google, make_adapter):
    google.accounts[CUSTOMER]["terms_accepted"] = False
    adapter = make_adapter(customer_match_terms=False)
    list_name = new_list(adapter)
    with pytest.raises(PermanentError, match="Accept the Customer Match terms") as caught:
        adapter.add_members(list_name, [member(1)])
    assert caught.value.code == "TERMS_AND_CONDITIONS_NOT_SIGNED"
    assert make_adapter().add_members(list_name, [member(1)]).request_ids  # stating ACCEPTED passes


# --- typed errors --------------------------------------------------------------------------------------------


def test_per_minute_quota_is_rate_limited_for_a_minute(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    google.fail_next("quota_per_minute", method="IngestAudienceMembers")
    with pytest.raises(RateLimited) as caught:
        adapter.add_members(list_name, [member(1)])
    assert caught.value.retry_after == 60
    assert caught.value.code == "IngestionMutateRequestsPerMinutePerProject"


def test_per_day_quota_waits_until_googles_daily_reset(google, make_adapter):
    adapter = make_adapter()
    list_name = new_list(adapter)
    google.fail_next("quota_per_day", method="IngestAudienceMembers")
    with pytest.raises(RateLimited) as caught:
        adapter.add_members(list_name, [member(1)])
    assert 60 <= caught.value.retry_after <= 25 * 3600
    noon_pacific = dt.datetime(2026, 7, 1, 19, 0, tzinfo=dt.UTC)  # 12:00 PDT
    assert seconds_until_pacific_midnight(noon_pacific) == 12 * 3600


def test_a_retry_delay_from_google_wins(google, make_adapter):
    adapter = make_adapter()
    google.fail_next("quota_per_minute", method="ListUserLists", retry_delay=17)
    with pytest.raises(RateLimited) as caught:
        adapter.validate_credentials()
    assert caught.value.retry_after == 17


def test_unknown_token_is_an_auth_error(google, make_adapter):
    adapter = make_adapter()
    adapter.google_credentials.token = "ya29.not-issued"
    adapter.google_credentials.expiry = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
    with pytest.raises(AuthError, match="ACCESS_TOKEN_EXPIRED"):
        adapter.validate_credentials()


def test_revoked_refresh_token_is_an_auth_error(google, make_adapter):
    with pytest.raises(AuthError, match="invalid_grant") as caught:
        make_adapter(refresh_token=EXPIRED_TOKEN).validate_credentials()
    assert CREDS["client_secret"] not in caught.value.message


def test_permission_denied_is_an_auth_error(google, make_adapter):
    with pytest.raises(AuthError, match="can reach Google Ads customer 1112223334"):
        make_adapter(customer_id="1112223334").validate_credentials()


@pytest.mark.parametrize("kind", ["unavailable", "internal", "deadline_exceeded"])
def test_server_trouble_is_transient(google, make_adapter, kind):
    adapter = make_adapter()
    google.fail_next(kind, method="ListUserLists")
    with pytest.raises(TransientError):
        adapter.validate_credentials()


def test_unknown_request_id_is_a_permanent_error(google, make_adapter):
    with pytest.raises(PermanentError, match="INVALID_REQUEST_ID"):
        make_adapter().request_status("no-such-request")


def test_missing_list_is_a_permanent_error(google, make_adapter):
    with pytest.raises(PermanentError, match="NOT_FOUND"):
        make_adapter().status(f"accountTypes/GOOGLE_ADS/accounts/{CUSTOMER}/userLists/1")


def test_unreachable_endpoint_is_transient(settings, make_adapter):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_dm": "127.0.0.1:9"}
    adapter = make_adapter()
    adapter.google_credentials.token = "ya29.x"
    adapter.google_credentials.expiry = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
    with pytest.raises(TransientError):
        adapter.validate_credentials()


# --- match keys ----------------------------------------------------------------------------------------------


def test_values_come_from_google_dm_match_keys():
    stored = prepare_record({"email": "Jane.Doe+promo@gmail.com", "first_name": "Mrs. Mary-Ann",
                             "last_name": "O'Neil Jr.", "country": "US", "postal_code": "94043-1351",
                             "phone": "(650) 253-0000"}, default_region="US").stored
    values = platform_values("google_dm", stored)
    assert values == {"email": sha("janedoe@gmail.com"), "phone": sha("+16502530000"),
                      "first_name": sha("mary-ann"), "last_name": sha("o'neil"), "country": "US",
                      "postal_code": "94043-1351"}
    # The Google Ads API path keeps its letters-only names and 5-digit ZIP (its own reference's wording).
    ads = platform_values("google_ads", stored)
    assert (ads["first_name"], ads["last_name"], ads["postal_code"]) == (sha("mrsmaryann"), sha("oneiljr"), "94043")
