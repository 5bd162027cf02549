"""Sign-in is throttled (django-axes) and every page but the login page needs a user."""

import pytest
from django.test import override_settings


@pytest.mark.django_db
@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5)
def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(client, user):
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code in {200, 429}
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_right_password_signs_in_and_lands_on_the_dashboard(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_wrong_password_shows_an_inline_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_login_form_requires_a_csrf_token(user):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"}
    )
    assert response.status_code == 403


@pytest.mark.django_db
@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5)
def test_a_junk_length_username_is_refused_and_throttled_not_a_500(client, user):
    # django-axes stores the attempted username in a 255-character column; PostgreSQL refused longer ones.
    junk = "a" * 5000
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": junk, "password": "0"})
        assert response.status_code in {200, 429}
    assert client.post("/accounts/login/", {"username": junk, "password": "0"}).status_code == 429
