"""The egress guard (activation_manager/egress.py): what a user-set URL may reach, at save time and on every
request. Every test runs under the ``network`` recorder: lookups are answered locally and connects reach only
loopback test servers, so a broken guard fails here instead of reaching 10.x or 169.254.169.254."""

from __future__ import annotations

import pytest
import requests

from activation_manager import egress
from sandbox.base import FakePlatform, FakeResponse, FakeServer
from tests.support.network import make_tls, serve_tls

PUBLIC = "93.184.215.14"  # a globally routable address; the recorder never lets a connect reach it
PUBLIC_2 = "93.184.215.15"


class Echo(FakePlatform):
    """Answers every request 200 with a marker body, or the scripted response."""

    prefix = "/svc"

    def __init__(self, response: FakeResponse | None = None):
        super().__init__()
        self.response = response

    def handle(self, request):
        return self.response or FakeResponse(200, {"ok": True, "marker": "INTERNAL-SERVICE-BODY"})


@pytest.fixture
def sandbox(settings, network):
    """A loopback server registered as the sandbox (FAKE_PLATFORMS_URL) and allowed by the recorder."""
    echo = Echo()
    with FakeServer([echo]) as server:
        settings.EGRESS_ALLOW_SANDBOX = True
        settings.FAKE_PLATFORMS_URL = server.url
        network.allow(server.httpd.server_address[1])
        server.echo = echo
        yield server


def refused(url: str) -> str:
    with pytest.raises(egress.EgressRefused) as caught:
        egress.check_url(url)
    return caught.value.message


# Every class of address, in every spelling -------------------------------------------------------

LITERALS = [
    "https://127.0.0.1/", "https://127.0.0.1:8765/", "https://127.255.255.254/",  # loopback
    "https://10.0.0.5:6379/", "https://172.16.0.1/", "https://192.168.1.1/",  # private
    "https://169.254.169.254/latest", "https://169.254.170.2/",  # link-local: metadata services
    "https://100.64.0.1/", "https://100.127.255.254/",  # shared address space (carrier-grade NAT)
    "https://224.0.0.1/", "https://239.255.255.250/",  # multicast
    "https://0.0.0.0/", "https://0.1.2.3/",  # unspecified / "this network"
    "https://240.0.0.1/", "https://255.255.255.255/",  # reserved / broadcast
    "https://192.0.0.8/", "https://198.18.0.1/", "https://192.0.2.1/",  # special purpose, documentation
    "https://[::1]/", "https://[::]/",  # IPv6 loopback, unspecified
    "https://[fe80::1]/", "https://[fe80::1%25eth0]/",  # link-local
    "https://[fd00::1]/", "https://[fd12:3456:789a::1]/", "https://[fc00::1]/",  # unique-local
    "https://[ff02::1]/",  # multicast
    "https://[::ffff:127.0.0.1]/", "https://[::ffff:10.0.0.5]/", "https://[::ffff:169.254.169.254]/",  # mapped
    "https://[::127.0.0.1]/", "https://[::a00:5]/",  # IPv4-compatible
    "https://[64:ff9b::a00:5]/", "https://[2002:a00:5::1]/", "https://[2001:0:a00:5::1]/",  # NAT64, 6to4, Teredo
    "https://[fec0::1]/", "https://[fd00:ec2::254]/",  # site-local; AWS's IPv6 metadata address
]


@pytest.mark.parametrize("url", LITERALS)
def test_every_class_of_non_public_address_is_refused(url, network):
    assert refused(url) == egress.NOT_PUBLIC
    assert network.connects == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0x7f000001", "0177.0.0.1",
                                  "127.0.1", "0x7f.0.0.1", "0300.0250.1.1", "10.1", "0xa000005"])
def test_numeric_and_short_ipv4_spellings_are_refused(host, network):
    assert refused(f"https://{host}/v1") == egress.NOT_PUBLIC
    assert network.connects == []


@pytest.mark.parametrize("host", ["0x7f.1", "127.1", "0177.0.0.1"])
def test_a_numeric_spelling_is_judged_by_what_it_resolves_to(host, network):
    # The C library reads these as 127.0.0.1; the guard checks that answer, not the spelling.
    with pytest.raises(egress.EgressRefused):
        egress.checked_address("https", host, 443)
    assert host in network.lookups


@pytest.mark.parametrize("host", [
    "metadata.google.internal", "METADATA.GOOGLE.INTERNAL", "metadata.google.internal.", "metadata",
    "instance-data", "metadata.goog", "localhost", "LOCALHOST", "api.localhost", "redis", "db.internal",
    "printer.local", "kubernetes.default.svc",
])
def test_metadata_and_local_names_are_refused_without_even_a_lookup(host, network):
    assert refused(f"https://{host}/computeMetadata/v1/") == egress.NOT_PUBLIC
    assert network.lookups == [] and network.connects == []


def test_a_public_name_that_resolves_to_a_private_address_is_refused(network):
    network.answer("partner.example", "10.0.0.5")
    assert refused("https://partner.example/v1") == egress.NOT_PUBLIC
    network.answer("cloud.example", "169.254.169.254")
    assert refused("https://cloud.example/latest") == egress.NOT_PUBLIC
    network.answer("six.example", "fd00::5")
    assert refused("https://six.example/") == egress.NOT_PUBLIC
    network.answer("mapped.example", "::ffff:127.0.0.1")
    assert refused("https://mapped.example/") == egress.NOT_PUBLIC
    assert network.connects == []


def test_one_private_answer_among_public_ones_is_enough_to_refuse(network):
    network.answer("partner.example", [PUBLIC, "10.0.0.5"])
    assert refused("https://partner.example/v1") == egress.NOT_PUBLIC


def test_a_name_that_does_not_resolve_reads_like_a_private_one(network):
    # No oracle for which internal names exist.
    assert refused("https://unknown.example/v1") == egress.NOT_PUBLIC


def test_a_public_https_address_is_accepted_and_nothing_is_sent_at_save_time(network):
    network.answer("partner.example", PUBLIC)
    assert egress.check_url(" https://partner.example/v1 ") == "https://partner.example/v1"
    network.answer("partner6.example", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert egress.check_url("https://partner6.example:8443/v1") == "https://partner6.example:8443/v1"
    assert network.connects == []


@pytest.mark.parametrize("url,message", [
    ("http://partner.example/v1", egress.HTTPS_ONLY),
    ("ftp://partner.example/v1", egress.HTTPS_ONLY),
    ("https://user:pw@partner.example/v1", egress.NO_USERINFO),
    ("https://partner.example:99999/", egress.INVALID),
    ("https:///v1", egress.INVALID),
    ("partner.example/v1", egress.INVALID),
])
def test_only_plain_https_urls_are_accepted(url, message, network):
    network.answer("partner.example", PUBLIC)
    assert refused(url) == message


# Operator settings: the allowlist and the sandbox --------------------------------------------------

def test_an_allowlisted_host_may_resolve_to_a_private_address_but_never_to_loopback_or_metadata(settings, network):
    settings.EGRESS_ALLOWED_HOSTS = ["partner.corp", "10.20.0.0/16"]
    network.answer("partner.corp", "10.1.2.3")
    assert egress.check_url("https://partner.corp/v1")
    network.answer("other.example", "10.20.5.5")
    assert egress.check_url("https://other.example/v1")  # in an allowed network
    network.answer("partner.corp", "127.0.0.1")
    assert refused("https://partner.corp/v1") == egress.NOT_PUBLIC
    network.answer("partner.corp", "169.254.169.254")
    assert refused("https://partner.corp/v1") == egress.NOT_PUBLIC
    network.answer("elsewhere.example", "10.1.2.3")
    assert refused("https://elsewhere.example/v1") == egress.NOT_PUBLIC
    settings.EGRESS_ALLOWED_HOSTS = ["metadata.google.internal"]
    assert refused("https://metadata.google.internal/") == egress.NOT_PUBLIC


def test_the_sandbox_is_exactly_its_own_scheme_host_and_port(settings, network):
    settings.EGRESS_ALLOW_SANDBOX = True
    settings.FAKE_PLATFORMS_URL = "http://127.0.0.1:8765"
    assert egress.check_url("http://127.0.0.1:8765/netflix/v1")
    assert refused("http://127.0.0.1:6379/") == egress.HTTPS_ONLY  # another loopback port
    assert refused("https://127.0.0.1:8765/") == egress.NOT_PUBLIC  # another scheme
    assert refused("http://localhost:8765/") == egress.HTTPS_ONLY  # another name
    settings.EGRESS_ALLOW_SANDBOX = False
    assert refused("http://127.0.0.1:8765/netflix/v1") == egress.HTTPS_ONLY
    assert network.connects == []


def test_production_settings_never_allow_the_sandbox():
    import subprocess
    import sys

    from tests.test_settings_deploy import ROOT, _production_env

    code = "from django.conf import settings as s; print(s.EGRESS_ALLOW_SANDBOX)"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=_production_env(EGRESS_ALLOW_SANDBOX="true", TESTING="true"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


# Every request: re-checked, pinned, no redirects ---------------------------------------------------

def test_every_request_is_checked_again_so_a_rebinding_answer_is_refused(network):
    # First answer public (the form's check passes), second private (the request's own lookup).
    network.answer("rebind.example", PUBLIC, "10.0.0.5")
    assert egress.check_url("https://rebind.example/v1")
    with pytest.raises(egress.EgressRefused) as caught:
        egress.session().get("https://rebind.example/v1/partners/p", timeout=2)
    assert caught.value.message == egress.NOT_PUBLIC
    assert network.connects == []
    assert network.lookups_of("rebind.example") == 2


def test_the_request_connects_to_the_very_address_it_checked(network, tmp_path):
    """One lookup per request, and the connect goes to that answer; TLS is verified against the NAME, and the
    name is the SNI and the Host header."""
    files = make_tls(tmp_path, "partner.example")
    echo = Echo()
    server = FakeServer([echo])
    sni = serve_tls(server, files)
    with server:
        network.answer("partner.example", PUBLIC, "10.0.0.5")  # a second lookup would get the private one
        network.route(PUBLIC, 443, server.httpd.server_address[1])  # the public address is served on loopback
        session = egress.session()
        session.verify = str(files.ca)
        response = session.get("https://partner.example/svc/partners/p", timeout=5)
    assert response.status_code == 200 and response.json()["ok"] is True
    assert network.lookups_of("partner.example") == 1
    assert network.connects == [(PUBLIC, 443)]
    assert sni == ["partner.example"]
    assert echo.requests[0].headers["host"] == "partner.example"


def test_tls_is_verified_against_the_host_name_not_the_pinned_address(network, tmp_path):
    files = make_tls(tmp_path, "someone-else.example")
    server = FakeServer([Echo()])
    serve_tls(server, files)
    with server:
        network.answer("partner.example", PUBLIC)
        network.route(PUBLIC, 443, server.httpd.server_address[1])
        session = egress.session()
        session.verify = str(files.ca)
        with pytest.raises(requests.exceptions.SSLError):
            session.get("https://partner.example/svc/", timeout=5)


def test_environment_proxies_are_ignored(network, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    network.answer("partner.example", PUBLIC)
    with pytest.raises(requests.ConnectionError):
        egress.session().get("https://partner.example/v1", timeout=2)
    assert network.connects == [(PUBLIC, 443)]  # straight to the checked address, not to the proxy


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", [
    "http://10.0.0.5:6379/", "http://169.254.169.254/latest/meta-data/", "https://127.0.0.1:6379/",
    "http://partner.example/v1", "/svc/elsewhere",
])
def test_a_redirect_is_a_failed_request_and_is_never_followed(sandbox, network, status, location):
    sandbox.echo.response = FakeResponse(status, "INTERNAL-SERVICE-BODY", headers={"Location": location})
    url = f"{sandbox.url}/svc/segments"
    with pytest.raises(egress.RedirectRefused) as caught:
        egress.session().post(url, data=b'{"members": []}', timeout=5)
    assert caught.value.status == status
    assert "INTERNAL-SERVICE-BODY" not in caught.value.message and location not in caught.value.message
    assert len(sandbox.echo.requests) == 1  # nothing re-sent anywhere
    assert network.refused_connects() == []


def test_plain_http_is_refused_on_every_request_too(network):
    network.answer("partner.example", PUBLIC)
    with pytest.raises(egress.EgressRefused) as caught:
        egress.session().get("http://partner.example/v1", timeout=2)
    assert caught.value.message == egress.HTTPS_ONLY
    assert network.connects == []


def test_a_private_literal_is_refused_on_every_request(network):
    for url in ("https://169.254.169.254/latest", "https://[::ffff:10.0.0.5]/", "https://0x7f.1/"):
        with pytest.raises(egress.EgressRefused):
            egress.session().get(url, timeout=2)
    assert network.connects == []


def test_status_line_uses_the_standard_phrase_not_the_servers():
    assert egress.status_line(502) == "HTTP 502 Bad Gateway"
    assert egress.status_line(599) == "HTTP 599"
