"""The connection's own page: test, edit, disconnect and delete from there, and the syncs that use it;
and the platform cards' header badge and identifiers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audiences.models import Audience
from credentials import selectors
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync, SyncRun
from tests.credentials.conftest import APP_SECRET, GOOD_TOKEN, reload, tiktok_form

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def html(response) -> str:
    return response.content.decode()


def detail_url(connection) -> str:
    return reverse("connection_detail", args=[connection.pk])


def test_the_page_offers_test_edit_disconnect_and_delete(alice_client, alice_tiktok):
    page = html(alice_client.get(detail_url(alice_tiktok)))
    for name in ("connection_test", "connection_disconnect", "connection_delete"):
        assert f'action="{reverse(name, args=[alice_tiktok.pk])}"' in page
    assert f'href="{detail_url(alice_tiktok)}?edit=1' in page
    assert "from its card on the" not in page  # no longer read-only
    assert 'name="return_to" value="connection"' in page
    assert GOOD_TOKEN not in page and APP_SECRET not in page


def test_test_now_from_the_page_comes_back_to_it_with_the_result(alice_client, alice_tiktok, scripted):
    response = alice_client.post(reverse("connection_test", args=[alice_tiktok.pk]), {"return_to": "connection"},
                                 follow=True)
    assert response.redirect_chain[-1][0] == detail_url(alice_tiktok)
    assert "Working: reached" in html(response)


def test_edit_on_the_page_shows_the_form_in_place_errors_stay_there_and_success_comes_back(
        alice_client, alice_tiktok, scripted):
    page = html(alice_client.get(detail_url(alice_tiktok) + "?edit=1"))
    assert f'action="{reverse("connection_edit", args=[alice_tiktok.pk])}"' in page
    assert "hx-post" not in page.split('class="connect-form"')[1]  # a plain form: the page reloads
    assert "Leave blank to keep the stored value." in page and GOOD_TOKEN not in page

    edit = reverse("connection_edit", args=[alice_tiktok.pk])
    response = alice_client.post(edit, tiktok_form("bad-0001", return_to="connection"))
    assert response.status_code == 200
    page = html(response)
    assert "Access token is invalid or expired" in page and 'id="connection-syncs"' in page  # still this page

    response = alice_client.post(edit, tiktok_form("", app_secret="", label="Renamed", return_to="connection"),
                                 follow=True)
    assert response.redirect_chain[-1][0] == detail_url(alice_tiktok)
    assert "Saved “Renamed”" in html(response) and reload(alice_tiktok).label == "Renamed"


def test_disconnect_from_the_page_comes_back_with_reconnect_and_delete_goes_to_platforms(alice_client, alice_tiktok):
    response = alice_client.post(reverse("connection_disconnect", args=[alice_tiktok.pk]),
                                 {"return_to": "connection"}, follow=True)
    assert response.redirect_chain[-1][0] == detail_url(alice_tiktok)
    page = html(response)
    assert "Reconnect" in page and "none stored" in page and reload(alice_tiktok).secrets == {}

    response = alice_client.post(reverse("connection_delete", args=[alice_tiktok.pk]), {"return_to": "connection"},
                                 follow=True)
    assert response.redirect_chain[-1][0] == reverse("platform_list") + "#platform-tiktok"
    assert not Connection.objects.filter(pk=alice_tiktok.pk).exists()


def _sync(owner, connection, name, **extra):
    audience = Audience.objects.create(owner=owner, name=name, default_country="US", **extra)
    return Sync.objects.create(owner=owner, audience=audience, connection=connection, mode=Sync.Mode.MIRROR)


def test_the_page_lists_the_syncs_that_use_it_with_their_latest_run(alice_client, user, alice_tiktok):
    newsletter = _sync(user, alice_tiktok, "Newsletter")
    SyncRun.objects.create(sync=newsletter, status=SyncRun.Status.FAILED)
    latest = SyncRun.objects.create(sync=newsletter, status=SyncRun.Status.SUCCEEDED)
    _sync(user, alice_tiktok, "Being deleted", status=Audience.Status.DELETING)
    other = Connection.objects.create(owner=user, platform=alice_tiktok.platform, label="Other", config={},
                                      secrets={})
    _sync(user, other, "Elsewhere")

    syncs = selectors.syncs_using(connection=alice_tiktok)
    assert [s.audience.name for s in syncs] == ["Newsletter"]
    assert syncs[0].last_run_pk == latest.pk and syncs[0].last_run_label == "Succeeded"

    page = html(alice_client.get(detail_url(alice_tiktok)))
    syncs_html = page[page.index('id="connection-syncs"'):page.index('id="events-title"')]
    assert "Newsletter" in syncs_html and "Mirror (add and remove)" in syncs_html
    assert reverse("audience_detail", args=[newsletter.audience_id]) in syncs_html
    assert reverse("sync_run_detail", args=[latest.pk]) in syncs_html
    assert "Being deleted" not in syncs_html and "Elsewhere" not in syncs_html


def test_a_connection_without_syncs_says_how_to_add_one(alice_client, alice_tiktok):
    page = html(alice_client.get(detail_url(alice_tiktok)))
    assert "No sync sends an audience here yet" in page


def test_the_card_header_shows_the_platforms_status(alice_client, user, alice_tiktok):
    def header(page):
        card = page[page.index('id="platform-tiktok"'):]
        return card[:card.index("</div>")]

    assert ">Active<" in header(html(alice_client.get(reverse("platform_list"))))
    Connection.objects.create(owner=user, platform=alice_tiktok.platform, label="Second", config={}, secrets={},
                              status=Connection.Status.ERROR, last_error="TikTok: revoked.")
    assert "badge-error" in header(html(alice_client.get(reverse("platform_list"))))
    assert "1 of 2 in error" in header(html(alice_client.get(reverse("platform_list"))))
    Connection.objects.filter(owner=user).update(status=Connection.Status.DISCONNECTED)
    assert "2 of 2 disconnected" in header(html(alice_client.get(reverse("platform_list"))))


def test_choices_show_their_label_and_long_identifiers_are_shown_whole(alice_client, user):
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="google_ads"), label="Google", secrets={"client_secret": "x"},
        config={"client_id": "demo-client.apps.googleusercontent.com", "customer_id": "1234567890",
                "consent_ad_user_data": "GRANTED", "consent_ad_personalization": "UNSPECIFIED"},
    )
    identifiers = dict(selectors.connection_view(connection).identifiers)
    assert identifiers["Consent: ad user data"] == "Granted"
    assert identifiers["Consent: ad personalization"] == "Not specified"
    page = html(alice_client.get(reverse("platform_list")))
    assert "GRANTED" not in page and "demo-client.apps.googleusercontent.com" in page


def test_the_forms_cancel_button_disables_itself_not_an_inherited_selector(alice_client):
    page = html(alice_client.get(reverse("connection_create", args=["meta"]), **HX))
    cancel = page[page.rindex("<button", 0, page.index(">Cancel</button>")):]
    assert 'hx-disabled-elt="this"' in cancel


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_platforms_tab_is_current_on_every_platforms_page(alice_client, alice_tiktok, method, scripted):
    urls = {"get": [reverse("platform_list"), detail_url(alice_tiktok), detail_url(alice_tiktok) + "?edit=1",
                    reverse("partner_contract", args=["netflix"])],
            "post": [reverse("connection_edit", args=[alice_tiktok.pk])]}
    for url in urls[method]:
        page = html(getattr(alice_client, method)(url, tiktok_form("bad-1", return_to="connection")
                                                  if method == "post" else None))
        assert '<a href="/platforms/" aria-current="page">Platforms</a>' in page, url


def test_a_yes_no_setting_reads_yes_or_no_on_the_card_and_the_connection_page(alice_client, user):
    platform = Platform.objects.get(code="google_dm")
    base = {"customer_id": "1234567890", "consent_ad_user_data": "GRANTED", "consent_ad_personalization": "DENIED"}
    ticked = Connection.objects.create(owner=user, platform=platform, label="Ticked", secrets={"x": "y"},
                                       config={**base, "customer_match_terms": True})
    unticked = Connection.objects.create(owner=user, platform=platform, label="Unticked", secrets={"x": "y"},
                                         config={**base, "customer_match_terms": False})
    label = "The Google Ads account has accepted the Customer Match terms"
    assert dict(selectors.connection_view(ticked).identifiers)[label] == "Yes"
    assert dict(selectors.connection_view(unticked).identifiers)[label] == "No"
    for url in (reverse("platform_list"), detail_url(ticked), detail_url(unticked)):
        page = html(alice_client.get(url))
        assert f"<dt>{label}</dt>" in page
        assert "<dd>True</dd>" not in page and "<dd>False</dd>" not in page
    assert f"<dt>{label}</dt><dd>Yes</dd>" in html(alice_client.get(detail_url(ticked)))
    assert f"<dt>{label}</dt><dd>No</dd>" in html(alice_client.get(detail_url(unticked)))
