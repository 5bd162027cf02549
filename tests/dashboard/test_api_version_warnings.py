"""The dashboard warns, 30 days ahead, that a platform stops serving the API version its adapter speaks (read from
each adapter's ``api_version``), for the platforms the user is connected to."""

import datetime

import pytest
from django.urls import reverse

from activation_manager.selectors import api_version_warnings
from credentials.models import Connection
from platforms.adapters import get_adapter_class
from platforms.adapters.base import ApiVersion
from platforms.models import Platform


def connect(owner, code):
    return Connection.objects.create(owner=owner, platform=Platform.objects.get(code=code), label=f"{code} main",
                                     config={}, secrets={"access_token": "warning-test-token"})


def set_version(monkeypatch, code, version):
    monkeypatch.setattr(get_adapter_class(code), "api_version", version)


def test_every_adapter_states_its_api_version_and_dated_sunsets_name_their_source():
    from platforms.adapters.registry import all_adapter_classes

    for code, adapter in all_adapter_classes().items():
        if adapter.partner:
            continue  # our own partner contract: no platform version to follow
        assert adapter.api_version is not None, code
        if adapter.api_version.sunset is not None:
            assert adapter.api_version.source.startswith("https://"), code


def test_a_sunset_within_30_days_warns_and_a_later_one_does_not(monkeypatch):
    set_version(monkeypatch, "linkedin", ApiVersion("202606", "2027-06-15", source="https://example.test/li"))
    day = datetime.date(2027, 5, 16)  # 30 days before
    assert [w.days_left for w in api_version_warnings(platform_codes={"linkedin"}, today=day)] == [30]
    assert api_version_warnings(platform_codes={"linkedin"}, today=day - datetime.timedelta(days=1)) == []
    assert api_version_warnings(platform_codes={"meta"}, today=day) == []  # not connected: not warned


def test_a_passed_sunset_keeps_warning(monkeypatch):
    set_version(monkeypatch, "ttd", ApiVersion("v3", "2027-01-01", source="https://example.test/ttd"))
    [warning] = api_version_warnings(platform_codes={"ttd"}, today=datetime.date(2027, 1, 10))
    assert warning.days_left == -9 and warning.platform == "The Trade Desk"


@pytest.mark.django_db
def test_the_dashboard_shows_the_warning_with_estimates_marked(alice_client, user, monkeypatch):
    soon = datetime.date.today() + datetime.timedelta(days=12)
    set_version(monkeypatch, "meta", ApiVersion("v26.0", soon, source="https://example.test/meta", estimated=True))
    set_version(monkeypatch, "tiktok", ApiVersion("v1.3", soon, source="https://example.test/tiktok"))
    connect(user, "meta")
    page = alice_client.get(reverse("dashboard")).content.decode()
    section = page[page.index("Platform API versions ending soon"):]
    assert "Meta: API v26.0" in section and "in 12 days" in section
    assert "an estimate from the platform" in section
    assert "TikTok" not in section  # no TikTok connection
    assert "warning-test-token" not in page


@pytest.mark.django_db
def test_the_dashboard_says_nothing_when_no_sunset_is_near(alice_client, user, monkeypatch):
    set_version(monkeypatch, "meta", ApiVersion("v26.0", datetime.date.today() + datetime.timedelta(days=200)))
    connect(user, "meta")
    assert "Platform API versions ending soon" not in alice_client.get(reverse("dashboard")).content.decode()
