"""Every state-changing request needs a CSRF token: a POST without one is refused on every URL."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.security.test_authorization_matrix import _url, alices_objects, iter_patterns, kind_of  # noqa: F401

PUBLIC_ARGUMENTS = {"code", "platform_code", "platform"}


def all_urls(objects):
    for namespace, name, _route, converters in iter_patterns():
        if not name:
            continue
        if any(a not in PUBLIC_ARGUMENTS and kind_of(a, name) is None for a in converters):
            continue  # test_every_url_argument_is_known reports these
        yield _url(namespace, name, converters, objects)


@pytest.mark.django_db
def test_post_without_csrf_token_is_refused_everywhere(user, alices_objects):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    accepted = []
    for url in all_urls(alices_objects):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.post(url, {"label": "x", "name": "x"}, **headers)
            # 403: refused by the CSRF check; 405: the URL takes no POST at all.
            if response.status_code not in (403, 405):
                accepted.append(f"POST {url} -> {response.status_code}")
    assert not accepted, accepted


@pytest.mark.django_db
def test_login_form_needs_csrf_too():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "x"})
    assert response.status_code == 403
