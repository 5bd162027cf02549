"""The dashboard's welcome steps and connection rows lead where the work happens."""

import re

import pytest
from django.urls import reverse

from credentials.models import Connection
from platforms.models import Platform

pytestmark = pytest.mark.django_db


def test_each_welcome_step_is_a_link_to_where_it_happens(alice_client):
    page = alice_client.get(reverse("dashboard")).content.decode()
    steps = page[page.index('class="welcome-steps"'):page.index("</ol>")]
    links = re.findall(r'<li><a href="([^"]+)">', steps)
    assert links == [reverse("platform_list"), reverse("audience_create"), reverse("audience_list")]
    assert 'class="card empty"' not in page  # the centred empty-state style is not used for the steps


def test_connection_rows_link_to_the_connection_page(alice_client, user):
    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="meta"), label="Main",
                                           config={}, secrets={"access_token": "EAA-dash-secret"})
    page = alice_client.get(reverse("dashboard")).content.decode()
    assert f'<a href="{reverse("connection_detail", args=[connection.pk])}">Main</a>' in page
    assert "EAA-dash-secret" not in page
