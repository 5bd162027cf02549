"""Submitting a page's one-click "sample file" form as a browser would: its own fields, CSRF enforced."""

from __future__ import annotations

import re

from django.test import Client

from audiences.models import Audience


def submit_sample_form(url: str, user) -> tuple[object, Audience]:
    """Open ``url`` as ``user`` with a client that enforces CSRF, post its sample form with exactly the fields it
    carries (its own CSRF token), and return the response and the audience it created."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(url).content.decode()
    form = re.search(r'<form class="inline-form sample-form" method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    assert form, "no sample form on the page"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    assert set(fields) == {"csrfmiddlewaretoken", "use_sample"}
    response = client.post(form.group(1), fields)
    return response, Audience.objects.get(owner=user)
