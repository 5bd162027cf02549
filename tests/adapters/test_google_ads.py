"""The Google Ads adapter through its public interface, against the loopback gRPC fake and the fake OAuth endpoint.

One fake Google Ads server and one fake OAuth server per module; each test resets the recorded calls and faults.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from types import SimpleNamespace
from unittest import mock

import grpc
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.v26.services.types import google_ads_service as gas

from platforms.adapters import get_adapter_class
from platforms.adapters.base import Operation, UploadSession
from platforms.adapters.google_ads import (
    BATCH_SIZE,
    IDENTIFIERS_PER_REQUEST,
    MEMBERSHIP_LIFE_SPAN,
    GoogleAdsCredentialsForm,
)
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from platforms.matchkeys import platform_values, prepare_record
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.google_ads import FAILURE_KEY, MANAGER_ID, FakeGoogleAdsServer, GrpcFault
from sandbox.google_oauth import DEMO_ACCESS_TOKEN, FakeGoogleOAuth, access_token_for

CREDS = {k: v for k, v in DEMO_CREDENTIALS["google_ads"].items() if k != "label"}
CUSTOMER = "1234567890"
SECRETS = (CREDS["client_secret"], CREDS["refresh_token"], CREDS["developer_token"], DEMO_ACCESS_TOKEN)
_names = itertools.count(1)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def member(n: int, *, address: bool = False) -> dict:
    values = {"email": sha(f"user{n}@example.com"), "phone": sha(f"+1555{n:07d}")}
    if address:
        values.update(first_name=sha(f"ann{n}"), last_name=sha("lee"), country="US", postal_code="94043")
    return values


def unique(name: str) -> str:
    return f"{name} {next(_names)}"


@pytest.fixture(scope="module")
def servers():
    oauth = FakeGoogleOAuth()
    http = FakeServer([oauth]).start()
    ads = FakeGoogleAdsServer().start()
    yield SimpleNamespace(oauth=oauth, http=http, ads=ads)
    ads.stop()
    http.stop()


@pytest.fixture
def google(servers, settings):
    """The module's fake, clean of calls and faults, with the adapter settings pointing at it."""
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_ads": servers.ads.address}
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{servers.http.url}/google-oauth/token"
    ads = servers.ads
    ads.reset_calls()
    ads.faults.clear()
    ads.complete_jobs = True
    for customer in ads.customers.values():
        customer.update(terms_accepted=True, manager_only=False)
    servers.oauth.requests.clear()
    servers.oauth.faults.clear()
    servers.oauth.token_requests = 0
    return ads


@pytest.fixture
def oauth(servers):
    return servers.oauth


@pytest.fixture
def make_adapter(google):
    made = []

    def make(**overrides):
        adapter = get_adapter_class("google_ads")({**CREDS, **overrides})
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def identifiers(operation) -> list[tuple]:
    data = operation.create if "create" in operation else operation.remove
    out = []
    for identifier in data.user_identifiers:
        if "address_info" in identifier:
            a = identifier.address_info
            out.append(("address", a.hashed_first_name, a.hashed_last_name, a.country_code, a.postal_code))
        elif "hashed_email" in identifier:
            out.append(("email", identifier.hashed_email))
        else:
            out.append(("phone", identifier.hashed_phone_number))
    return out


# Declarations ---------------------------------------------------------------------------
def test_registry_gives_the_google_adapter_with_truthful_capabilities():
    cls = get_adapter_class("google_ads")
    caps = cls.capabilities
    assert cls.code == "google_ads" and cls.account_field == "customer_id"
    assert caps.batch_size == 10_000
    assert set(cls.match_keys) == {"email", "phone", "first_name", "last_name", "country", "postal_code"}
    assert caps.operations == {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}
    assert Operation.REPLACE not in caps.operations
    assert caps.min_audience_size == 100
    assert caps.rate_limit.requests > 0


def test_credentials_form_normalises_ids_and_keeps_secrets_secret():
    form = GoogleAdsCredentialsForm(data={**DEMO_CREDENTIALS["google_ads"], "login_customer_id": "987-654-3210"})
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    assert config["customer_id"] == CUSTOMER and config["login_customer_id"] == MANAGER_ID
    assert config["consent_ad_user_data"] == "GRANTED" and config["consent_ad_personalization"] == "GRANTED"
    assert set(secrets) == {"client_secret", "developer_token", "refresh_token"}
    assert GoogleAdsCredentialsForm.help_steps
    bad = GoogleAdsCredentialsForm(data={**DEMO_CREDENTIALS["google_ads"], "customer_id": "123-456"})
    assert not bad.is_valid() and "10 digits" in bad.errors["customer_id"][0]


# The full cycle -------------------------------------------------------------------------
def test_full_cycle_sends_the_exact_requests(google, oauth, make_adapter):
    ads = make_adapter()
    batch1 = [member(i, address=True) for i in range(3)]
    batch2 = [member(3), {"email": sha("only-email@example.com")}]

    result = ads.validate_credentials()
    assert result.account_name == "Demo customer"
    assert result.details["customer_id"] == "123-456-7890"

    name = unique("VIP buyers")
    list_name = ads.create_audience(name, "Synced by Activation Manager")
    assert list_name.startswith(f"customers/{CUSTOMER}/userLists/")

    first = ads.add_members(list_name, batch1, session=UploadSession(77, 1, False, 5))
    assert google.list_members(list_name) == []  # the job runs after the session's last batch
    second = ads.add_members(list_name, batch2, session=UploadSession(77, 2, True, 5))
    assert (first.received, first.invalid, second.received, second.invalid) == (3, 0, 2, 0)
    assert len(google.list_members(list_name)) == 5

    status = ads.status(list_name)
    assert status.state == "open; last upload success"
    assert status.raw["job_status"] == "SUCCESS"
    assert 0 <= status.size <= 5 and status.matched == status.size
    assert status.match_rate == pytest.approx(status.size / 5, abs=0.01)

    removed = ads.remove_members(list_name, [batch1[0]])
    assert (removed.received, removed.invalid) == (1, 0)
    assert batch1[0]["email"] not in google.list_identifiers(list_name, "hashed_email")
    assert len(google.list_members(list_name)) == 4

    ads.delete_audience(list_name)
    assert google.user_lists[list_name]["removed"]

    calls = google.calls
    assert [c.method for c in calls] == [
        "Search",  # validate
        "MutateUserLists",  # create
        "Search", "CreateOfflineUserDataJob", "AddOfflineUserDataJobOperations",  # batch 1: no pending job yet
        "Search", "AddOfflineUserDataJobOperations", "RunOfflineUserDataJob",  # batch 2: same job, then run
        "Search", "Search",  # status: list, latest job
        "CreateOfflineUserDataJob", "AddOfflineUserDataJobOperations", "RunOfflineUserDataJob",  # remove, no session
        "MutateUserLists",  # delete
    ]
    for call in calls:  # the library's metadata: developer token and the OAuth bearer token, no manager
        assert call.metadata["developer-token"] == CREDS["developer_token"]
        assert call.metadata["authorization"] == f"Bearer {DEMO_ACCESS_TOKEN}"
        assert "login-customer-id" not in call.metadata
    assert oauth.token_requests == 1  # one refresh, reused while valid
    token_form = oauth.requests[0].form()
    assert token_form == {"grant_type": "refresh_token", "refresh_token": CREDS["refresh_token"],
                          "client_id": CREDS["client_id"], "client_secret": CREDS["client_secret"],
                          "scope": "https://www.googleapis.com/auth/adwords"}

    validate = calls[0].request
    assert validate.customer_id == CUSTOMER
    assert validate.query == "SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1"

    create = calls[1].request
    assert create.customer_id == CUSTOMER and len(create.operations) == 1
    user_list = create.operations[0].create
    assert (user_list.name, user_list.description) == (name, "Synced by Activation Manager")
    assert user_list.membership_life_span == MEMBERSHIP_LIFE_SPAN == 540
    assert user_list.membership_status.name == "OPEN"
    assert user_list.crm_based_user_list.upload_key_type.name == "CONTACT_INFO"
    assert user_list.crm_based_user_list.data_source_type.name == "FIRST_PARTY"

    lookup = calls[2].request.query
    assert "offline_user_data_job.external_id" in lookup and "status = 'PENDING'" in lookup
    assert f"customer_match_user_list_metadata.user_list = '{list_name}'" in lookup

    job = calls[3].request
    assert job.customer_id == CUSTOMER
    assert job.job.type_.name == "CUSTOMER_MATCH_USER_LIST"
    assert job.job.external_id == 77
    metadata = job.job.customer_match_user_list_metadata
    assert metadata.user_list == list_name
    assert (metadata.consent.ad_user_data.name, metadata.consent.ad_personalization.name) == ("GRANTED", "GRANTED")
    job_name = next(j for j, s in google.jobs.items() if s["external_id"] == 77)

    add1, add2 = calls[4].request, calls[6].request
    for add in (add1, add2):
        assert add.resource_name == job_name
        assert add.enable_partial_failure is True
    assert [identifiers(op) for op in add1.operations] == [
        [("email", m["email"]), ("phone", m["phone"]),
         ("address", m["first_name"], m["last_name"], "US", "94043")] for m in batch1
    ]
    assert [identifiers(op) for op in add2.operations] == [
        [("email", batch2[0]["email"]), ("phone", batch2[0]["phone"])], [("email", batch2[1]["email"])],
    ]
    assert all("create" in op for op in [*add1.operations, *add2.operations])
    assert calls[7].request.resource_name == job_name

    status_query = calls[8].request.query
    assert f"WHERE user_list.resource_name = '{list_name}'" in status_query
    for field in ("size_for_display", "size_for_search", "match_rate_percentage", "membership_status"):
        assert f"user_list.{field}" in status_query
    job_query = calls[9].request.query
    assert "FROM offline_user_data_job" in job_query and "ORDER BY offline_user_data_job.id DESC LIMIT 1" in job_query
    assert f"customer_match_user_list_metadata.user_list = '{list_name}'" in job_query

    remove_job = calls[10].request.job
    assert remove_job.customer_match_user_list_metadata.user_list == list_name
    assert "consent" not in remove_job.customer_match_user_list_metadata  # Google needs no consent to remove
    assert remove_job.external_id == 0
    remove = calls[11].request
    assert remove.enable_partial_failure is True
    assert [identifiers(op) for op in remove.operations] == [
        [("email", batch1[0]["email"]), ("phone", batch1[0]["phone"]),
         ("address", batch1[0]["first_name"], batch1[0]["last_name"], "US", "94043")]
    ]
    assert all("remove" in op for op in remove.operations)

    delete = calls[13].request
    assert delete.customer_id == CUSTOMER and delete.operations[0].remove == list_name


def test_values_from_platform_values_are_sent_exactly(google, make_adapter):
    """What the importer stores, through platform_values, is what reaches Google (no rehashing)."""
    ads = make_adapter()
    stored = prepare_record({"email": " John.Doe@Gmail.com ", "phone": "(650) 253-0000", "first_name": "Ann",
                             "last_name": "Lée", "country": "us", "postal_code": "94043-1351"},
                            default_region="US").stored
    values = platform_values("google_ads", stored)
    list_name = ads.create_audience(unique("Exact values"))
    ads.add_members(list_name, [values])
    sent = identifiers(google.calls_to("AddOfflineUserDataJobOperations")[-1].request.operations[0])
    assert sent == [
        ("email", sha("johndoe@gmail.com")),
        ("phone", sha("+16502530000")),
        ("address", sha("ann"), sha("lée"), "US", "94043"),
    ]


def test_status_while_the_job_runs_and_after_it_finishes(google, make_adapter):
    ads = make_adapter()
    google.complete_jobs = False
    list_name = ads.create_audience(unique("Slow job"))
    ads.add_members(list_name, [member(i) for i in range(10)])
    running = ads.status(list_name)
    assert running.state == "open; last upload running" and running.size == 0 and running.match_rate is None
    assert running.raw["job_match_rate_range"].startswith("MATCH_RANGE_")  # Google's estimate while running
    google.finish_jobs()
    done = ads.status(list_name)
    assert done.state == "open; last upload success"
    assert done.raw["size_for_search"] == done.size and 0 < done.size <= 10


def test_failed_job_is_reported_in_status(google, make_adapter):
    ads = make_adapter()
    google.complete_jobs = False
    list_name = ads.create_audience(unique("Failed job"))
    ads.add_members(list_name, [member(1)])
    google.finish_jobs("FAILED", "INSUFFICIENT_MATCHED_TRANSACTIONS")
    status = ads.status(list_name)
    assert status.raw["job_status"] == "FAILED"
    assert "failed" in status.state and "INSUFFICIENT_MATCHED_TRANSACTIONS" in status.state


def test_match_rate_is_plausible_and_deterministic(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Match rate"))
    ads.add_members(list_name, [member(i) for i in range(1000)])
    status = ads.status(list_name)
    assert 0.55 <= status.match_rate <= 0.75
    assert ads.status(list_name).size == status.size


# Batching and partial failure -----------------------------------------------------------
def test_a_full_batch_goes_in_requests_of_at_most_ten_thousand_identifiers(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Big batch"))
    batch = [member(i, address=True) for i in range(BATCH_SIZE)]  # 3 identifiers each
    started = time.perf_counter()
    result = ads.add_members(list_name, batch)
    elapsed = time.perf_counter() - started
    assert (result.received, result.invalid) == (BATCH_SIZE, 0)
    adds = google.calls_to("AddOfflineUserDataJobOperations")
    sizes = [sum(len(identifiers(op)) for op in call.request.operations) for call in adds]
    assert sizes == [9_999, 9_999, 9_999, 3] and max(sizes) <= IDENTIFIERS_PER_REQUEST
    assert sum(len(call.request.operations) for call in adds) == BATCH_SIZE
    assert len(google.calls_to("CreateOfflineUserDataJob")) == len(google.calls_to("RunOfflineUserDataJob")) == 1
    assert elapsed < 10, f"10,000 members took {elapsed:.2f} s"
    with pytest.raises(PermanentError, match="at most 10,000"):
        ads.add_members(list_name, batch + [member(BATCH_SIZE)])


def test_partial_failures_are_counted_without_the_values(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Partial"))
    hashed_zip = sha("94043")
    batch = [
        member(1),
        {"email": "Not-A-Hash@example.com"},  # not a SHA-256: Google refuses it
        {"first_name": sha("ann"), "last_name": sha("lee"), "country": "US", "postal_code": hashed_zip},
        {"country": "US"},  # nothing Google can match on: never sent
        member(2),
    ]
    result = ads.add_members(list_name, batch)
    assert (result.received, result.invalid) == (5, 3)
    text = " ".join(result.messages)
    assert "INVALID_SHA256_FORMAT" in text and "INVALID_ENCODING" in text and "no identifier" in text
    assert "Not-A-Hash" not in text and hashed_zip not in text
    assert len(google.calls_to("AddOfflineUserDataJobOperations")[-1].request.operations) == 4
    assert len(google.list_members(list_name)) == 2


def test_a_batch_without_any_usable_member_sends_nothing(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Nothing usable"))
    google.reset_calls()
    result = ads.add_members(list_name, [{"country": "US"}, {"postal_code": "94043"}])
    assert (result.received, result.invalid) == (2, 2)
    assert google.calls == []
    assert ads.add_members(list_name, []).received == 0


def test_resending_a_session_batch_reuses_the_pending_job(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Resend"))
    batch = [member(i) for i in range(3)]
    ads.add_members(list_name, batch, session=UploadSession(901, 1, False, 6))
    ads.add_members(list_name, batch, session=UploadSession(901, 1, False, 6))  # a retried batch
    ads.add_members(list_name, [member(i) for i in range(3, 6)], session=UploadSession(901, 2, True, 6))
    assert len(google.calls_to("CreateOfflineUserDataJob")) == 1
    assert len(google.calls_to("RunOfflineUserDataJob")) == 1
    assert len(google.list_members(list_name)) == 6  # Google (and the fake) merge the same person


def test_batches_of_a_stopped_run_reach_the_list(google, make_adapter):
    """A run cancelled or failed before its last batch: the batches it sent are in a pending job, which runs."""
    ads = make_adapter()
    list_name = ads.create_audience(unique("Stopped"))
    ads.add_members(list_name, [member(i) for i in range(3)], session=UploadSession(905, 1, False, 9))
    assert google.list_members(list_name) == []
    ads.end_upload(list_name)  # the engine, whatever ended the sending
    google.finish_jobs()
    assert len(google.list_members(list_name)) == 3
    ads.end_upload(list_name)  # nothing pending: nothing run
    assert len(google.calls_to("RunOfflineUserDataJob")) == 1


def test_a_job_left_pending_by_a_dead_worker_runs_before_the_next_session(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Dead worker"))
    ads.add_members(list_name, [member(i) for i in range(3)], session=UploadSession(909, 1, False, 9))
    # The worker died: no end_upload. The next run's first batch hands the old job over, then makes its own.
    ads.add_members(list_name, [member(i) for i in range(3, 5)], session=UploadSession(913, 1, True, 2))
    google.finish_jobs()
    assert len(google.list_members(list_name)) == 5
    assert len(google.calls_to("RunOfflineUserDataJob")) == 2


def test_audience_ids_are_validated_before_they_reach_a_query(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Ids"))
    digits = list_name.rsplit("/", 1)[1]
    assert ads.status(digits).raw["name"].startswith("Ids")
    google.reset_calls()
    for bad in ("customers/1111111111/userLists/5", "5' OR '1'='1", "userLists/5"):
        with pytest.raises(PermanentError):
            ads.status(bad)
    assert google.calls == []


def test_status_of_a_removed_list_is_a_permanent_error(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Gone"))
    ads.delete_audience(list_name)
    with pytest.raises(PermanentError, match="no user list"):
        ads.status(list_name)
    with pytest.raises(PermanentError, match="RESOURCE_NOT_FOUND"):
        ads.delete_audience(list_name)


# Credentials and OAuth -------------------------------------------------------------------
def test_validate_credentials_through_a_manager_account(google, make_adapter):
    google.customers[CUSTOMER]["manager_only"] = True
    with pytest.raises(AuthError, match="USER_PERMISSION_DENIED"):
        make_adapter().validate_credentials()
    result = make_adapter(login_customer_id="987-654-3210").validate_credentials()
    assert result.details["login_customer_id"] == MANAGER_ID
    assert google.calls[-1].metadata["login-customer-id"] == MANAGER_ID


def test_a_manager_that_does_not_manage_the_customer_is_refused(google, make_adapter):
    with pytest.raises(AuthError, match="USER_PERMISSION_DENIED"):
        make_adapter(login_customer_id="1112223334").validate_credentials()


def test_wrong_developer_token_fails_validation(google, make_adapter):
    with pytest.raises(AuthError, match="DEVELOPER_TOKEN_INVALID"):
        make_adapter(developer_token="not-the-token").validate_credentials()


def test_expired_refresh_token_is_an_auth_error_before_any_grpc_call(google, oauth, make_adapter):
    with pytest.raises(AuthError, match="invalid_grant") as caught:
        make_adapter(refresh_token=EXPIRED_TOKEN).validate_credentials()
    assert "Token has been expired or revoked" in caught.value.message
    assert oauth.token_requests == 1 and google.calls == []


def test_wrong_client_secret_is_an_auth_error(google, make_adapter):
    with pytest.raises(AuthError, match="invalid_client"):
        make_adapter(client_secret="wrong-secret").validate_credentials()


def test_a_refresh_token_granted_by_the_oauth_server_gets_a_working_access_token(google, oauth, make_adapter):
    access = oauth.grant("1//another-refresh-token", CREDS["client_id"], CREDS["client_secret"])
    google.accept_token(access)
    make_adapter(refresh_token="1//another-refresh-token").validate_credentials()
    assert google.calls[-1].metadata["authorization"] == f"Bearer {access}"
    assert access == access_token_for("1//another-refresh-token")


def test_an_expired_access_token_is_refreshed_before_the_next_call(google, oauth, make_adapter):
    ads = make_adapter()
    ads.validate_credentials()
    ads.oauth_credentials.expiry = ads.oauth_credentials.expiry.replace(year=2000)  # expired long ago
    ads.validate_credentials()
    assert oauth.token_requests == 2


def test_oauth_endpoint_down_is_transient(google, make_adapter, settings):
    settings.GOOGLE_OAUTH_TOKEN_URL = "http://127.0.0.1:9/google-oauth/token"
    with pytest.raises(TransientError, match="OAuth token endpoint"):
        make_adapter().validate_credentials()


# Error mapping ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "retry_delay", "expected", "code"),
    [
        ("resource_exhausted", 12, RateLimited, "RESOURCE_EXHAUSTED"),
        ("quota_temporarily_exhausted", None, RateLimited, "RESOURCE_TEMPORARILY_EXHAUSTED"),
        ("unavailable", None, TransientError, "UNAVAILABLE"),
        ("deadline_exceeded", None, TransientError, "DEADLINE_EXCEEDED"),
        ("internal", None, TransientError, "INTERNAL_ERROR"),
        ("concurrent_modification", None, TransientError, "CONCURRENT_MODIFICATION"),
        ("authentication", None, AuthError, "OAUTH_TOKEN_EXPIRED"),
        ("authorization", None, AuthError, "USER_PERMISSION_DENIED"),
    ],
)
def test_google_failures_map_to_typed_errors(google, make_adapter, kind, retry_delay, expected, code):
    ads = make_adapter()
    google.fail_next(kind, retry_delay=retry_delay)
    with pytest.raises(expected) as caught:
        ads.validate_credentials()
    assert caught.value.code == code
    assert type(caught.value) is expected
    if expected is RateLimited:
        assert caught.value.retry_after == (retry_delay or 30.0)
    ads.validate_credentials()  # the fault was consumed: the next call works


def test_the_fake_raises_a_real_google_ads_exception_with_the_failure_trailer(google, make_adapter):
    ads = make_adapter()
    ads.validate_credentials()  # token in hand
    google.fail_next("authorization")
    with pytest.raises(GoogleAdsException) as caught:
        ads._service("GoogleAdsService").search(
            request=gas.SearchGoogleAdsRequest(customer_id=CUSTOMER, query="SELECT customer.id FROM customer"))
    exc = caught.value
    assert exc.error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert exc.failure.errors[0].error_code.authorization_error.name == "USER_PERMISSION_DENIED"
    assert exc.request_id.startswith("fake-")
    assert any(key == FAILURE_KEY for key, _ in exc.call.trailing_metadata())


def test_a_fault_on_one_method_leaves_the_others_alone(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Fault on add"))
    google.inject(GrpcFault(grpc.StatusCode.RESOURCE_EXHAUSTED, (("quota_error", "RESOURCE_EXHAUSTED", "Slow down."),),
                            method="AddOfflineUserDataJobOperations", retry_delay=90))
    with pytest.raises(RateLimited) as caught:
        ads.add_members(list_name, [member(1)])
    assert caught.value.retry_after == 90
    assert ads.add_members(list_name, [member(1)]).received == 1


def test_customer_data_terms_not_accepted_is_permanent_with_help(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Terms"))
    google.customers[CUSTOMER]["terms_accepted"] = False
    with pytest.raises(PermanentError, match="CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS") as caught:
        ads.add_members(list_name, [member(1)])
    assert "Customer Match terms" in caught.value.message


def test_denied_consent_is_refused_by_google_for_adds_but_removals_still_work(google, make_adapter):
    ads = make_adapter(consent_ad_personalization="DENIED")
    list_name = ads.create_audience(unique("Consent"))
    with pytest.raises(PermanentError, match="consent"):
        ads.add_members(list_name, [member(1)])
    job = google.calls_to("CreateOfflineUserDataJob")[-1].request.job
    assert job.customer_match_user_list_metadata.consent.ad_personalization.name == "DENIED"
    assert ads.remove_members(list_name, [member(1)]).received == 1


def test_duplicate_list_name_is_permanent(google, make_adapter):
    ads = make_adapter()
    name = unique("Twice")
    ads.create_audience(name)
    with pytest.raises(PermanentError, match="NAME_ALREADY_USED"):
        ads.create_audience(name)


def test_unreachable_endpoint_is_transient(make_adapter, google, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_ads": "127.0.0.1:9"}
    with pytest.raises(TransientError, match="UNAVAILABLE"):
        make_adapter().validate_credentials()


def test_without_the_insecure_setting_the_channel_is_tls(make_adapter, google, settings):
    """Production never speaks plain text: a TLS handshake with the loopback fake fails (transient)."""
    settings.GRPC_PLAINTEXT_LOOPBACK = False
    with pytest.raises(TransientError):
        make_adapter().validate_credentials()
    assert google.calls == []


def test_no_error_message_carries_a_secret(google, make_adapter):
    messages = []
    for kind in ("authentication", "authorization", "resource_exhausted", "internal", "unavailable"):
        google.fail_next(kind)
        try:
            make_adapter().validate_credentials()
        except (AuthError, RateLimited, TransientError) as exc:
            messages.append(exc.message)
    wrong = ({"refresh_token": EXPIRED_TOKEN}, {"client_secret": "wrong-secret-xyz"}, {"developer_token": "bad-dev"})
    for overrides in wrong:
        with pytest.raises(AuthError) as caught:
            make_adapter(**overrides).validate_credentials()
        messages.append(caught.value.message)
    assert len(messages) == 8
    for message in messages:
        for secret in (*SECRETS, EXPIRED_TOKEN, "wrong-secret-xyz", "bad-dev"):
            assert secret not in message, (secret, message)
    assert "refresh_token" not in repr(make_adapter())


def test_unspecified_consent_leaves_the_consent_unset(google, make_adapter):
    ads = make_adapter(consent_ad_user_data="UNSPECIFIED", consent_ad_personalization="UNSPECIFIED")
    list_name = ads.create_audience(unique("No consent given"))
    ads.add_members(list_name, [member(1)])
    metadata = google.calls_to("CreateOfflineUserDataJob")[-1].request.job.customer_match_user_list_metadata
    assert metadata.user_list == list_name and "consent" not in metadata


def test_the_adapter_sends_what_google_ads_client_get_service_sends(google, make_adapter):
    """Guard against library drift: our service stack sends the same metadata as GoogleAdsClient's own.

    GoogleAdsClient.get_service can only open TLS channels, so for this comparison alone its transport's
    create_channel is patched (inside this test) to add the loopback channel credentials.
    """
    from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
        GoogleAdsServiceGrpcTransport,
    )
    from google.oauth2.credentials import Credentials

    adapter = make_adapter(login_customer_id=MANAGER_ID)
    adapter.validate_credentials()
    ours = google.calls[-1]

    original = GoogleAdsServiceGrpcTransport.create_channel.__func__
    local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)

    def create_channel(cls, *args, **kwargs):
        return original(cls, *args, ssl_credentials=local, **kwargs)

    client = GoogleAdsClient(Credentials(token=DEMO_ACCESS_TOKEN), developer_token=CREDS["developer_token"],
                             endpoint=google.address, login_customer_id=MANAGER_ID, use_proto_plus=True,
                             version="v26")
    with mock.patch.object(GoogleAdsServiceGrpcTransport, "create_channel", classmethod(create_channel)):
        service = client.get_service("GoogleAdsService")
    list(service.search(customer_id=CUSTOMER, query=ours.request.query))
    theirs = google.calls[-1]
    assert theirs.request == ours.request
    compared = ("developer-token", "login-customer-id", "authorization", "x-goog-api-client")
    assert {k: theirs.metadata.get(k) for k in compared} == {k: ours.metadata.get(k) for k in compared}
    assert set(theirs.metadata) - {"user-agent"} == set(ours.metadata) - {"user-agent"}


# The fake holds the adapter to Google's rules ---------------------------------------------
def _job(ads, list_name: str) -> str:
    from google.ads.googleads.v26.services.types import offline_user_data_job_service as oudj

    return ads._rpc("OfflineUserDataJobService", "create_offline_user_data_job", oudj.CreateOfflineUserDataJobRequest(
        customer_id=CUSTOMER, job={"type_": "CUSTOMER_MATCH_USER_LIST",
                                   "customer_match_user_list_metadata": {"user_list": list_name}})).resource_name


def _add(ads, job: str, operations, partial: bool = True):
    from google.ads.googleads.v26.services.types import offline_user_data_job_service as oudj

    return ads._rpc("OfflineUserDataJobService", "add_offline_user_data_job_operations",
                    oudj.AddOfflineUserDataJobOperationsRequest(resource_name=job, enable_partial_failure=partial,
                                                                operations=operations))


def test_fake_refuses_more_than_100000_identifiers_per_request(google, make_adapter):
    from platforms.adapters.google_ads import build_operations

    ads = make_adapter()
    list_name = ads.create_audience(unique("Too many"))
    operations, _ = build_operations("create", [member(i, address=True) for i in range(33_334)])  # 100,002 ids
    with pytest.raises(PermanentError, match="TOO_MANY_USER_IDENTIFIERS"):
        _add(ads, _job(ads, list_name), operations)


def test_fake_checks_each_operation_like_google(google, make_adapter):
    from platforms.adapters.google_ads import partial_failures

    ads = make_adapter()
    list_name = ads.create_audience(unique("Strict"))
    job = _job(ads, list_name)
    ok = {"create": {"user_identifiers": [{"hashed_email": sha("a@example.com")}]}}
    operations = [
        ok,
        {"create": {"user_identifiers": [{"hashed_email": sha(f"{n}@example.com")} for n in range(21)]}},
        {"create": {"user_identifiers": [{"mobile_id": "6b2a4c0e-1f4d-4a8e-9a53-0c7d9e6b1a2f"}]}},
        {"create": {"user_identifiers": [{"address_info": {"hashed_first_name": sha("ann"),
                                                           "hashed_last_name": sha("lee"),
                                                           "country_code": "usa", "postal_code": "94043"}}]}},
        {"create": {}},
    ]
    count, reasons = partial_failures(_add(ads, job, operations))
    assert count == 4
    assert {reason.rsplit("(", 1)[1].rstrip(")") for reason in reasons} == {
        "TOO_MANY_USER_IDENTIFIERS", "INCOMPATIBLE_UPLOAD_KEY_TYPE", "INVALID_COUNTRY_CODE",
        "MISSING_USER_IDENTIFIER"}
    with pytest.raises(PermanentError, match="INVALID_SHA256_FORMAT"):  # without partial failure: all or nothing
        _add(ads, job, [ok, {"create": {"user_identifiers": [{"hashed_email": "x@example.com"}]}}], partial=False)


def test_fake_refuses_operations_after_the_job_started(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Started"))
    ads.add_members(list_name, [member(1)])
    job = google.calls_to("RunOfflineUserDataJob")[-1].request.resource_name
    with pytest.raises(PermanentError, match="JOB_ALREADY_STARTED"):
        _add(ads, job, [{"create": {"user_identifiers": [{"hashed_email": sha("b@example.com")}]}}])


def test_fake_refuses_a_membership_life_span_beyond_540_days(google, make_adapter):
    from google.ads.googleads.v26.services.types import user_list_service as uls

    ads = make_adapter()
    request = uls.MutateUserListsRequest(customer_id=CUSTOMER, operations=[{"create": {
        "name": unique("Forever"), "membership_life_span": 10000,
        "crm_based_user_list": {"upload_key_type": "CONTACT_INFO", "data_source_type": "FIRST_PARTY"}}}])
    with pytest.raises(PermanentError, match="TOO_HIGH"):
        ads._rpc("UserListService", "mutate_user_lists", request)


def test_grpc_message_size_limit_is_permanent_not_a_throttle(google, make_adapter):
    ads = make_adapter()
    google.inject(GrpcFault(grpc.StatusCode.RESOURCE_EXHAUSTED,
                            message="Received message larger than max (9700249 vs. 4194304)"))
    with pytest.raises(PermanentError, match="too large"):
        ads.validate_credentials()


# Through the connection services (the "test connection" of the connect form) --------------
@pytest.mark.django_db
def test_connecting_google_ads_validates_through_the_fake(google, user):
    from credentials import services
    from credentials.models import Connection
    from platforms.models import Platform

    platform = Platform.objects.get(code="google_ads")
    form = GoogleAdsCredentialsForm(data=DEMO_CREDENTIALS["google_ads"])
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    connection = services.connect(owner=user, platform=platform, label=label, config=config, secrets=secrets)
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.ACTIVE
    assert services.test_connection(connection=connection).status == Connection.Status.ACTIVE
    assert [call.method for call in google.calls] == ["Search", "Search"]

    with pytest.raises(services.CredentialsRejected) as caught:
        services.connect(owner=user, platform=platform, label="Expired", config=config,
                         secrets={**secrets, "refresh_token": EXPIRED_TOKEN})
    assert "invalid_grant" in caught.value.message and EXPIRED_TOKEN not in caught.value.message


def test_people_sharing_a_name_and_postal_code_stay_distinct(google, make_adapter):
    ads = make_adapter()
    list_name = ads.create_audience(unique("Same address"))
    same = {"first_name": sha("ann"), "last_name": sha("smith"), "country": "US", "postal_code": "10001"}
    ads.add_members(list_name, [{"email": sha("a@example.com"), **same}, {"email": sha("b@example.com"), **same},
                                dict(same)])
    assert len(google.list_members(list_name)) == 3
    ads.remove_members(list_name, [{"email": sha("a@example.com")}])
    assert len(google.list_members(list_name)) == 2
    # A removal removes whoever matches any identifier sent: the address-only removal takes b@ too (which is why the
    # engine sends a name and address in a removal only when no current member holds them: syncs/engine/read.py).
    ads.remove_members(list_name, [dict(same)])
    assert google.list_members(list_name) == []
