"""The mapping page of a French customer file (Latin-1, semicolons) in Chromium at desktop (1366 px) and phone
(390 px) widths: the encoding named in words, the values as read, another encoding picked and the samples
changing before anything is imported, the person key and its fallback, then a re-import that drops a column and
changes the person key, warned with the members it changes. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from audiences import imports
from audiences.models import Audience, ImportJob
from tests.browser.helpers import ROOT, shot

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

FRENCH = ("prenom;nom;email;ville;Cust Ref\n"
          "Éloïse;Lefèvre;marie.lefèvre@free.fr;Besançon;C1\n"
          "Gaëlle;Núñez;gaelle.nunez@orange.fr;Orléans;C2\n"
          "Jérôme;Dubois;jerome@laposte.net;Saint-Étienne;C3\n"
          "Françoise;Lemaître;f.lemaitre@free.fr;Nîmes;C4\n")
WITHOUT_CITY = ("prenom;nom;email;Cust Ref\n"
                "Éloïse;Lefèvre;marie.lefèvre@free.fr;C1\n"
                "Gaëlle;Núñez;gaelle.nunez@orange.fr;C2\n"
                "Zoé;Martin;zoe@free.fr;C5\n")


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request):
    return request.param


@pytest.fixture
def width(viewport) -> str:
    return "desktop" if viewport["width"] > 800 else "phone"


def fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def samples_of(page, header: str):
    return page.locator(f"td.samples[data-samples-for='{header}'] li")


def test_french_file_mapping_encoding_person_key_and_reimport_warnings(signed_in, live_server, user, tmp_path,
                                                                      width):
    page = signed_in
    french = tmp_path / "clients-fr.csv"
    french.write_bytes(FRENCH.encode("latin-1"))

    page.goto(f"{live_server.url}/audiences/new/")
    page.get_by_label(re.compile("^name", re.I)).fill("Clients France")
    page.get_by_label(re.compile("default country", re.I)).select_option("FR")
    page.locator("input[type=file]").set_input_files(str(french))
    page.get_by_role("button", name="Upload and continue").click()

    # Read as Western European: the names as written, three per column.
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    encoding = page.get_by_label(re.compile("^Encoding"))
    expect(encoding).to_have_value("cp1252")
    expect(page.locator("[data-encoding]")).to_have_text("Western European (Windows-1252)")
    expect(samples_of(page, "nom")).to_have_text(["Lefèvre", "Núñez", "Dubois"])
    expect(samples_of(page, "ville")).to_have_text(["Besançon", "Orléans", "Saint-Étienne"])
    assert fits_the_window(page)
    shot(page, f"import-mapping-french-{width}", readme=False)

    # Another encoding: the samples change at once, nothing is imported.
    encoding.select_option("cp1250")
    expect(samples_of(page, "nom")).to_have_text(["Lefčvre", "Núńez", "Dubois"])
    expect(page.locator("[data-encoding]")).to_have_text("Central European (Windows-1250)")
    expect(page.get_by_text("(detected: Western European (Windows-1252))")).to_be_visible()
    shot(page, f"import-mapping-cp1250-{width}", readme=False)
    assert ImportJob.objects.get().status == ImportJob.Status.UPLOADED
    page.get_by_label(re.compile("^Encoding")).select_option("cp1252")
    expect(samples_of(page, "nom")).to_have_text(["Lefèvre", "Núñez", "Dubois"])

    # "Cust Ref" is not recognised: map it, and the person key can be the external id.
    page.get_by_label("Column Cust Ref").select_option("external_id")
    person_key = page.get_by_label("Identify each member by")
    expect(person_key.locator("option")).to_have_count(2)
    person_key.select_option("external_id")
    expect(page.get_by_text(re.compile("A row without an external ID is identified by its email address"))) \
        .to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(re.compile("Importing “clients-fr.csv”"))).to_be_visible()
    job = ImportJob.objects.get()
    imports.run_import(job.pk)  # the worker's part, in this process
    audience = Audience.objects.get()
    assert audience.member_count == 4 and audience.person_key == "external_id"

    # The audience page: values by column, what each platform can use.
    page.reload()
    expect(page.get_by_role("heading", name="Values by column")).to_be_visible()
    expect(page.get_by_role("heading", name="What each platform can use")).to_be_visible()
    expect(page.locator("#platform-coverage tr[data-platform='linkedin'] td").nth(1)).to_have_text("4 of 4")
    assert fits_the_window(page)
    shot(page, f"audience-counts-{width}", readme=False)
    for part in ("column-counts", "platform-coverage"):  # close-ups, to read them at phone width too
        page.locator(f"#{part}").screenshot(path=str(SCREENSHOTS / f"audience-{part}-{width}.png"))

    # A re-import without the city column: remembered mapping, the missing column announced with its members.
    page.get_by_role("link", name="Replace members with a new file").click()
    reimport = tmp_path / "clients-fr-2.csv"
    reimport.write_bytes(WITHOUT_CITY.encode("latin-1"))
    page.locator("input[type=file]").set_input_files(str(reimport))
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_label("Column Cust Ref")).to_have_value("external_id")
    expect(page.get_by_label("Identify each member by")).to_have_value("external_id")
    warning = page.locator(".missing-columns")
    expect(warning).to_contain_text("“ville” (City) is not in this file: the 4 members with city lose it")

    # Changing the person key re-identifies everyone: said with the count, confirmed by a tick.
    page.get_by_label("Identify each member by").select_option("email")
    expect(page.locator(".reidentify")).to_contain_text("This re-identifies all 4 members")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Tick the box to re-identify all 4 members")).to_be_visible()
    assert fits_the_window(page)
    shot(page, f"import-mapping-reimport-{width}", readme=False)
    page.get_by_label("Yes, re-identify all 4 members").check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(re.compile("Importing “clients-fr-2.csv”"))).to_be_visible()
    assert audience.imports.filter(status=ImportJob.Status.QUEUED).get().person_key == "email"
