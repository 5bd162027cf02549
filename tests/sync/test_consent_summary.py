"""The consent a marketer stated on a Google connection is shown on each sync that uses it; nothing is assumed."""

import pytest
from django.urls import reverse

from audiences.models import Audience
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync
from syncs.selectors import consent_summary


def sync_to(owner, code, config):
    connection = Connection.objects.create(owner=owner, platform=Platform.objects.get(code=code), label="Main",
                                           config=config, secrets={"refresh_token": "consent-test-secret"})
    audience = Audience.objects.create(owner=owner, name="EU customers", default_country="FR")
    return Sync.objects.create(owner=owner, audience=audience, connection=connection)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["google_dm", "google_ads"])
def test_the_summary_reads_the_connections_stated_consent(user, code):
    sync = sync_to(user, code, {"consent_ad_user_data": "GRANTED", "consent_ad_personalization": "DENIED"})
    summary = consent_summary(sync)
    assert [(c.label, c.value, c.stated) for c in summary] == [
        ("ad user data", "Granted", True), ("ad personalization", "Denied", True)]


@pytest.mark.django_db
def test_a_consent_not_stated_is_shown_as_not_stated_never_as_granted(user):
    sync = sync_to(user, "google_dm", {"consent_ad_user_data": "GRANTED"})
    summary = consent_summary(sync)
    assert [(c.value, c.stated) for c in summary] == [("Granted", True), ("not stated", False)]


@pytest.mark.django_db
def test_platforms_that_ask_no_consent_have_no_summary(user):
    assert consent_summary(sync_to(user, "tiktok", {"advertiser_id": "1"})) is None


@pytest.mark.django_db
def test_the_audience_page_shows_the_consent_on_the_sync_row(alice_client, user):
    sync = sync_to(user, "google_dm", {"consent_ad_user_data": "DENIED", "consent_ad_personalization": ""})
    page = alice_client.get(reverse("audience_detail", args=[sync.audience.pk])).content.decode()
    row = page[page.index(f'id="sync-{sync.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "Consent: ad user data <strong>denied</strong>" in row
    assert "ad personalization <span class=\"badge badge-error\">not stated</span>" in row
    assert reverse("connection_detail", args=[sync.connection.pk]) in row
    assert "consent-test-secret" not in page


@pytest.mark.parametrize("code", ["google_dm", "google_ads"])
def test_the_google_forms_have_no_consent_default_and_explain_the_eu_policy(code):
    from platforms.adapters import get_adapter_class

    form_class = get_adapter_class(code).credentials_form
    for name in ("consent_ad_user_data", "consent_ad_personalization"):
        field = form_class.base_fields[name]
        assert field.required and field.initial in (None, "")
        assert field.choices[0][0] == ""  # "— choose —": the marketer must pick
    assert "EU user consent policy" in form_class.base_fields["consent_ad_user_data"].help_text
    data = {k: v for k, v in get_adapter_class(code).sandbox_values().items() if not k.startswith("consent_")}
    bound = form_class(data=data)
    assert not bound.is_valid() and {"consent_ad_user_data", "consent_ad_personalization"} <= set(bound.errors)
