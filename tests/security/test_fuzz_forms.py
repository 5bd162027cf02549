"""Every form a signed-in user can reach survives arbitrary input: no 500, ever.

Forms are discovered, not listed: each page without arguments and each of alice's object pages
(the same URL walk as the authorization matrix) is fetched, its <form>s and hx-post targets are
parsed, and hypothesis posts arbitrary text into every field.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.test_authorization_matrix import _url, alices_objects, iter_patterns, kind_of  # noqa: F401

# Text that tends to break things: control characters, huge numbers, markup, formulas, non-BMP.
NASTY = st.one_of(
    st.text(max_size=300),
    st.sampled_from([
        "", " ", "\x00", "0", "-1", "99999999999999999999999999", "1e309", "NaN", "<script>alert(1)</script>",
        "=HYPERLINK(\"http://x\")", "' OR 1=1 --", "act_", "act_abc", "😀" * 50, "a" * 5000, "../../etc/passwd",
        "%s%s%n", "{{ 7*7 }}", "\r\n", "ＡＢＣ", "null", "true", "[]", "{}",
    ]),
)


class FormFinder(HTMLParser):
    """Collects (action, method, field names) from <form>s, and hx-post targets."""

    def __init__(self, page_url):
        super().__init__()
        self.page_url = page_url
        self.forms: list[dict] = []
        self.current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            action = attrs.get("hx-post") or attrs.get("action") or self.page_url
            method = "post" if (attrs.get("hx-post") or (attrs.get("method") or "get").lower() == "post") else "get"
            self.current = {"action": action, "method": method, "fields": set()}
            self.forms.append(self.current)
        elif tag in ("input", "select", "textarea") and self.current is not None and attrs.get("name"):
            if attrs.get("type") not in ("file",) and attrs["name"] != "csrfmiddlewaretoken":
                self.current["fields"].add(attrs["name"])
        elif tag == "button" and attrs.get("hx-post"):
            self.forms.append({"action": attrs["hx-post"], "method": "post", "fields": set()})

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


def discover_forms(client, objects) -> list[dict]:
    pages = []
    for namespace, name, _route, converters in iter_patterns():
        if not name or name in {"logout"}:
            continue
        if any(kind_of(a, name) is None and a not in {"code", "platform_code", "platform"} for a in converters):
            continue
        pages.append(_url(namespace, name, converters, objects))
    found = {}
    for url in pages:
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            finder = FormFinder(url)
            finder.feed(response.content.decode(errors="replace"))
            for form in finder.forms:
                if form["method"] != "post" or reverse("logout") in form["action"]:
                    continue
                key = form["action"]
                found.setdefault(key, set()).update(form["fields"])
    return [{"action": action, "fields": sorted(fields)} for action, fields in found.items()]


@pytest.fixture
def discovered_forms(alice_client, alices_objects):  # noqa: F811
    return discover_forms(alice_client, alices_objects)


def test_forms_are_discovered(discovered_forms):
    assert discovered_forms, "no form found: the discovery walk is broken"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_form_answers_500_to_arbitrary_input(data, alice_client, discovered_forms):
    alice_client.raise_request_exception = False
    for form in discovered_forms:
        payload = {name: data.draw(NASTY, label=f"{form['action']}:{name}") for name in form["fields"]}
        response = alice_client.post(form["action"], payload, HTTP_HX_REQUEST="true")
        assert response.status_code < 500, f"POST {form['action']} {payload!r} -> {response.status_code}"
