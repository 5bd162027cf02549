"""The Netflix partner endpoint (a URL any user types in) through the egress guard: the form, the connect page's
error texts, the adapter's handling of redirects and bodies, and a whole sync run. All under the ``network``
recorder (tests/security/conftest.py): no lookup or connect leaves the machine."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activation_manager import egress
from credentials.models import Connection
from platforms.adapters import get_adapter_class
from platforms.adapters.netflix import NetflixCredentialsForm
from platforms.errors import PermanentError
from platforms.models import Platform
from sandbox.base import FakeResponse, FakeServer, Fault
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.netflix import FakeNetflix
from syncs.engine import execute_run
from syncs.models import SyncRun
from tests.support.network import make_tls, serve_tls
from tests.sync.conftest import free_limiter, make_audience, make_sync, new_run, sleeps  # noqa: F401 — fixtures

PUBLIC = "93.184.215.14"
CREDS = {k: v for k, v in DEMO_CREDENTIALS["netflix"].items() if k != "label"}
MARKER = "INTERNAL-SERVICE-BODY redis_version:7.2.4"


def form_errors(base_url: str) -> list[str]:
    form = NetflixCredentialsForm(data={**DEMO_CREDENTIALS["netflix"], "base_url": base_url})
    assert not form.is_valid()
    return form.errors.get("base_url", [])


@pytest.mark.parametrize("base_url", [
    "https://169.254.169.254/latest", "https://10.0.0.5:6379", "https://127.0.0.1:8765/netflix/v1",
    "https://localhost:5432/", "https://metadata.google.internal/computeMetadata/v1", "https://[fd00::1]/v1",
    "https://[::ffff:127.0.0.1]/", "https://100.64.0.1/", "http://127.0.0.1:6379/",
])
def test_the_form_refuses_internal_endpoints(base_url, network):
    errors = form_errors(base_url)
    assert errors and errors[0] in (egress.NOT_PUBLIC, egress.HTTPS_ONLY)
    assert network.connects == []


def test_the_form_refuses_a_public_name_resolving_to_a_private_address(network):
    network.answer("partner.example", "10.0.0.5")
    assert form_errors("https://partner.example/v1") == [egress.NOT_PUBLIC]


def test_the_form_accepts_a_public_https_endpoint(network):
    network.answer("partner.example", PUBLIC)
    form = NetflixCredentialsForm(data={**DEMO_CREDENTIALS["netflix"], "base_url": "https://partner.example/v1/"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["base_url"] == "https://partner.example/v1"


# No port scanner: every failure to connect reads the same -------------------------------------------

def _connect_error(client, network) -> str:
    network.answer("partner.example", PUBLIC)
    response = client.post(reverse("connection_create", args=["netflix"]),
                           {**DEMO_CREDENTIALS["netflix"], "base_url": "https://partner.example/v1"})
    assert response.status_code in (200, 302)
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1, response.context["form"].errors
    assert not Connection.objects.exists()
    return errors[0]


@pytest.mark.django_db
def test_closed_port_unreachable_host_tls_failure_and_timeout_give_one_identical_error(alice_client, network,
                                                                                        tmp_path, settings):
    settings.PLATFORM_HTTP_TIMEOUT = 2
    texts = {}
    texts["closed"] = _connect_error(alice_client, network)  # the recorder refuses: connection refused
    network.behave(PUBLIC, "unreachable")
    texts["unreachable"] = _connect_error(alice_client, network)
    network.behave(PUBLIC, "timeout")
    texts["timeout"] = _connect_error(alice_client, network)
    server = FakeServer([FakeNetflix()])
    serve_tls(server, make_tls(tmp_path, "partner.example"))  # signed by an authority nobody trusts
    with server:
        network.route(PUBLIC, 443, server.httpd.server_address[1])
        texts["tls"] = _connect_error(alice_client, network)
    assert len(set(texts.values())) == 1, texts
    assert "connection failed" in texts["closed"] and PUBLIC not in texts["closed"]
    assert {ip for ip, _port in network.connects} == {PUBLIC}


# The adapter: redirects, bodies and counts -------------------------------------------------------------

@pytest.fixture
def partner(settings, network):
    """The fake partner endpoint on loopback, as the sandbox (the only loopback address the guard allows)."""
    fake = FakeNetflix()
    with FakeServer([fake]) as server:
        settings.EGRESS_ALLOW_SANDBOX = True
        settings.FAKE_PLATFORMS_URL = server.url
        network.allow(server.httpd.server_address[1])
        fake.base_url = f"{server.url}/netflix/v1"
        yield fake


def adapter(fake):
    return get_adapter_class("netflix")({**CREDS, "base_url": fake.base_url})


def redirect(status: int, location: str, **match) -> Fault:
    return Fault(response=FakeResponse(status, MARKER, headers={"Location": location}), times=100, **match)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_validation_fails_without_showing_the_target_or_its_body(partner, network, status):
    partner.inject(redirect(status, "http://10.0.0.5:6379/info"))
    with pytest.raises(PermanentError) as caught:
        adapter(partner).validate_credentials()
    assert f"redirect (HTTP {status})" in caught.value.message
    assert MARKER not in caught.value.message and "10.0.0.5" not in caught.value.message
    assert network.refused_connects() == []


def test_a_307_never_resends_the_identifiers_and_key_to_a_plain_http_target(partner, network):
    partner.inject(redirect(307, "http://collector.example/steal", path_regex="members:add"))
    network.answer("collector.example", PUBLIC)
    nf = adapter(partner)
    segment = nf.create_audience("VIP")
    with pytest.raises(PermanentError, match="redirect"):
        nf.add_members(segment, [{"email": "a" * 64}])
    assert network.lookups_of("collector.example") == 0 and network.refused_connects() == []
    assert [r.path for r in partner.requests].count(f"/v1/segments/{segment}/members:add") == 1


def test_an_error_body_outside_the_contract_shape_is_reported_by_its_status_line_only(partner):
    partner.inject(Fault(response=FakeResponse(400, MARKER)))
    with pytest.raises(PermanentError) as caught:
        adapter(partner).validate_credentials()
    assert caught.value.message == "Netflix (partner): HTTP 400 Bad Request"
    partner.inject(Fault(response=FakeResponse(502, {"detail": MARKER})))
    with pytest.raises(Exception) as caught:
        adapter(partner).validate_credentials()
    assert MARKER not in caught.value.message and "HTTP 502 Bad Gateway" in caught.value.message


@pytest.mark.parametrize("answer", [{}, {"received": None}, {"received": "40"}, {"received": -1}, {"received": True},
                                    {"received": 4.0}, {"accepted": 1}])
def test_a_missing_or_malformed_received_count_is_a_failed_batch(partner, answer):
    nf = adapter(partner)
    segment = nf.create_audience("VIP")
    partner.inject(Fault(response=FakeResponse(200, answer), path_regex="members:add"))
    with pytest.raises(PermanentError, match='no valid "received" count'):
        nf.add_members(segment, [{"email": "a" * 64}, {"email": "b" * 64}, {"email": "c" * 64}, {"email": "d" * 64}])


def test_a_received_count_short_of_the_batch_is_a_failed_batch(partner):
    nf = adapter(partner)
    segment = nf.create_audience("VIP")
    partner.inject(Fault(response=FakeResponse(200, {"received": 1, "invalid": 0}), path_regex="members:add"))
    with pytest.raises(PermanentError, match="received 1 of the 2 rows"):
        nf.add_members(segment, [{"email": "a" * 64}, {"email": "b" * 64}])


# A whole run ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_run_whose_uploads_are_redirected_fails_instead_of_reporting_everything_sent(
    partner, user, free_limiter, sleeps  # noqa: F811 — fixtures
):
    # Before the guard: requests followed the 302 as a GET, the GET answered 200 without "received", and the
    # run said "Sent 40 of 40".
    partner.inject(redirect(302, "/netflix/v1/partners/demo-partner", path_regex="members:"))
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="netflix"), label="Partner",
        config={"partner_id": CREDS["partner_id"], "base_url": partner.base_url},
        secrets={"api_key": CREDS["api_key"], "api_secret": CREDS["api_secret"]},
    )
    sync = make_sync(user, make_audience(user, 40), connection)
    run = execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    assert run.status in (SyncRun.Status.FAILED, SyncRun.Status.PARTIAL)
    assert run.sent == 0
    batch = run.batches.get()
    assert "redirect (HTTP 302)" in batch.error_message
    assert not any(r.method == "GET" and r.path == "/v1/partners/demo-partner" for r in partner.requests)
