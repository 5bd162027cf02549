"""Secrets echoed by a platform in any form are masked (credentials/scrub.py) before they reach a ConnectionEvent,
Connection.last_error, a sync run or batch message, a log line or a page."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from credentials import services
from credentials.models import Connection, ConnectionEvent
from credentials.scrub import MASK, MIN_FRAGMENT, scrub, variants
from platforms.adapters.base import PlatformAdapter
from platforms.adapters.tiktok import TikTokCredentialsForm
from platforms.errors import AuthError, PermanentError
from platforms.models import Platform
from syncs import engine
from syncs.models import SyncRun
from tests.conftest import swap_adapter
from tests.sync.conftest import ScriptedAdapter, free_limiter, make_audience, make_sync, new_run, sleeps  # noqa: F401

TOKEN = "EAAG7hQ2zPL9xV4kC8wM/0+1a=Zr5"  # has the characters URL-encoding and base64 change
APP_SECRET = "s3cr3t-APPSECRET-Zx9Qw8Ev7Rt6"


def b64(value: str, *, urlsafe=False, pad=True) -> str:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(value.encode()).decode()
    return encoded if pad else encoded.rstrip("=")


TRANSFORMS = {
    "verbatim": lambda s: s,
    "quote": lambda s: quote(s, safe=""),
    "quote-keep-slash": quote,
    "quote_plus": quote_plus,
    "quote-lower-hex": lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(s, safe="")),
    "base64": b64,
    "base64-unpadded": lambda s: b64(s, pad=False),
    "base64-urlsafe": lambda s: b64(s, urlsafe=True),
    "base64-urlsafe-unpadded": lambda s: b64(s, urlsafe=True, pad=False),
    "basic-auth": lambda s: base64.b64encode(f"user:{s}".encode()).decode(),
    "upper": str.upper,
    "lower": str.lower,
    "swapcase": str.swapcase,
    "truncated-head": lambda s: s[:MIN_FRAGMENT],
    "truncated-tail": lambda s: s[-MIN_FRAGMENT:],
    "middle-fragment": lambda s: s[5:5 + MIN_FRAGMENT + 2],
    "truncated-upper-quoted": lambda s: quote(s[:12].upper(), safe=""),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_every_form_of_a_secret_is_masked(name):
    echoed = TRANSFORMS[name](TOKEN)
    text = f"Platform said: token {echoed} is not valid (request id 42)."
    cleaned = scrub(text, {"access_token": TOKEN})
    assert echoed not in cleaned
    assert MASK in cleaned
    assert cleaned.startswith("Platform said: token ") and cleaned.endswith(" is not valid (request id 42).")


def test_a_whole_value_keeps_the_usual_masked_tail_and_other_text_is_untouched():
    assert scrub(f"bad token {TOKEN}!", {"t": TOKEN}) == "bad token ••••=Zr5!"
    assert scrub("nothing secret here, partner demo-partner", {"t": TOKEN, "s": APP_SECRET}) == \
        "nothing secret here, partner demo-partner"
    assert scrub("", {"t": TOKEN}) == "" and scrub(None, {"t": TOKEN}) == ""
    assert scrub("text", None) == "text"


def test_short_values_are_masked_whole_only():
    assert scrub("key abcd1 refused; abcd is fine", {"k": "abcd1"}) == "key ••••" + " refused; abcd is fine"


def test_casefolding_that_changes_length_keeps_the_rest_of_the_text_in_place():
    secret = "Straße-geheim-123456"
    assert scrub("ẞ before, STRASSE-GEHEIM-123456 after ß", {"s": secret}) == "ẞ before, ••••3456 after ß"


# Properties ------------------------------------------------------------------------------------------

# What tokens are made of (and, with the noise below, disjoint from it).
SECRET_ALPHABET = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./+=~%*&$#@^")
# Surrounding text shares no character with base64, URL-encoding or the secrets above (so nothing of it
# can be taken for a fragment), but includes separators that appear in real messages.
NOISE = st.text(alphabet=" ,:;()[]{}<>!?\n\t\"'|", max_size=40)


def windows_left(text: str, form: str) -> list[str]:
    """Windows of MIN_FRAGMENT characters of ``form`` still present in ``text`` (casefolded), ignoring the
    masked tail (the four last characters ``mask_secret`` shows on purpose)."""
    visible = re.sub(re.escape(MASK) + r".{0,4}", "\0", text, flags=re.S).casefold()
    form = form.casefold()
    return [form[i:i + MIN_FRAGMENT] for i in range(len(form) - MIN_FRAGMENT + 1)
            if form[i:i + MIN_FRAGMENT] in visible]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.text(SECRET_ALPHABET, min_size=MIN_FRAGMENT, max_size=60), before=NOISE, after=NOISE,
       transform=st.sampled_from(sorted(TRANSFORMS)))
@example(secret="aaaaaaaaaaaa", before="", after="", transform="verbatim")
@example(secret="%41%41%41%41%41", before="", after="", transform="quote")
def test_no_form_of_a_secret_survives(secret, before, after, transform):
    echoed = TRANSFORMS[transform](secret)
    cleaned = scrub(f"{before}{echoed}{after}", {"token": secret})
    # In "Basic base64(user:secret)" the first 8 characters encode "user:" (not secret) and one secret byte.
    sensitive = echoed[8:] if transform == "basic-auth" else echoed
    assert windows_left(cleaned, sensitive) == []


@settings(max_examples=200, deadline=None)
@given(secret=st.text(SECRET_ALPHABET, min_size=MIN_FRAGMENT, max_size=60),
       start=st.integers(min_value=0, max_value=60), length=st.integers(min_value=MIN_FRAGMENT, max_value=60),
       before=NOISE, after=NOISE)
def test_any_fragment_of_eight_or_more_characters_is_masked(secret, start, length, before, after):
    fragment = secret[start:start + length]
    if len(fragment) < MIN_FRAGMENT:
        fragment = secret[:MIN_FRAGMENT]
    cleaned = scrub(before + fragment + after, [secret])
    assert windows_left(cleaned, fragment) == []


@settings(max_examples=200, deadline=None)
@given(secret=st.text(SECRET_ALPHABET, min_size=MIN_FRAGMENT, max_size=40), text=NOISE)
def test_text_without_the_secret_is_unchanged(secret, text):
    assert scrub(text, {"token": secret}) == text


@settings(max_examples=100, deadline=None)
@given(secret=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=MIN_FRAGMENT, max_size=30))
def test_any_unicode_secret_is_masked_verbatim_and_url_encoded(secret):
    for echoed in (secret, quote(secret, safe=""), quote_plus(secret)):
        cleaned = scrub(f"[{echoed}]", {"token": secret})
        assert windows_left(cleaned, echoed) == [], (echoed, cleaned)


def test_variants_cover_the_documented_encodings():
    forms = variants(TOKEN)
    for encoded in (quote(TOKEN, safe=""), quote_plus(TOKEN), b64(TOKEN), b64(TOKEN, urlsafe=True, pad=False)):
        assert encoded.casefold() in forms


# Where it is applied ---------------------------------------------------------------------------------

class EchoingAdapter(PlatformAdapter):
    """Validation fails with the token echoed URL-encoded, in base64, upper-cased and truncated."""

    code = "tiktok"
    name = "TikTok"
    credentials_form = TikTokCredentialsForm
    account_field = "advertiser_id"

    def validate_credentials(self):
        token = str(self.credentials["access_token"])
        secret = str(self.credentials["app_secret"])
        raise AuthError(f"TikTok: GET /v1?access_token={quote(token, safe='')} refused; Authorization: Basic "
                        f"{b64(token)}; TOKEN={token.upper()}; token starts {token[:10]}…; secret {b64(secret)}",
                        code=40105)


ECHOES = (quote(TOKEN, safe=""), b64(TOKEN), TOKEN.upper(), TOKEN[:10], b64(APP_SECRET), TOKEN, APP_SECRET)


@pytest.fixture
def echoing(settings):
    swap_adapter(settings, "tiktok", "tests.security.test_scrub.EchoingAdapter")


def assert_clean(text: str):
    for echo in ECHOES:
        assert echo not in text, (echo, text)


@pytest.mark.django_db
def test_the_connect_form_error_is_scrubbed(user, echoing):
    with pytest.raises(services.CredentialsRejected) as caught:
        services.connect(owner=user, platform=Platform.objects.get(code="tiktok"), label="Main",
                         config={"app_id": "1", "advertiser_id": "2"},
                         secrets={"access_token": TOKEN, "app_secret": APP_SECRET})
    assert_clean(caught.value.message)
    assert MASK in caught.value.message


@pytest.mark.django_db
def test_last_error_and_the_events_of_a_failed_check_are_scrubbed(user, echoing, caplog):
    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="tiktok"), label="Main",
                                           config={"app_id": "1", "advertiser_id": "2"},
                                           secrets={"access_token": TOKEN, "app_secret": APP_SECRET},
                                           status=Connection.Status.ACTIVE)
    services.test_connection(connection=connection, actor=user)
    services.revalidate_connection(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ERROR
    assert_clean(connection.last_error)
    events = list(ConnectionEvent.objects.filter(connection=connection).values_list("message", flat=True))
    assert len(events) == 2
    for message in events:
        assert_clean(message)
    assert_clean(caplog.text)


@pytest.mark.django_db
def test_an_auth_failure_during_a_sync_is_scrubbed_on_the_connection_and_its_event(user):
    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="tiktok"), label="Main",
                                           config={"advertiser_id": "2"}, secrets={"access_token": TOKEN})
    services.mark_auth_failed_during_sync(connection_id=connection.pk,
                                          message=f"TikTok: token {quote_plus(TOKEN)} expired ({TOKEN.lower()})")
    connection.refresh_from_db()
    assert quote_plus(TOKEN) not in connection.last_error and TOKEN.lower() not in connection.last_error
    event = ConnectionEvent.objects.get(connection=connection)
    assert quote_plus(TOKEN) not in event.message and TOKEN.lower() not in event.message


@pytest.mark.django_db
def test_the_sync_engine_scrubs_run_and_batch_messages(user, free_limiter, sleeps, caplog):  # noqa: F811
    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="tiktok"), label="Main",
                                           config={"advertiser_id": "adv-1"}, secrets={"access_token": TOKEN})
    sync = make_sync(user, make_audience(user, 20), connection)
    adapter = ScriptedAdapter()
    adapter.script["add"] = [PermanentError(f"bad row; token {b64(TOKEN, urlsafe=True)} refused"),
                             AuthError(f"token {quote(TOKEN, safe='')} / {TOKEN[3:15]} expired")]
    run = engine.execute_run(run_id=new_run(sync).pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status in (SyncRun.Status.FAILED, SyncRun.Status.PARTIAL)
    for text in [run.error_message, caplog.text, Connection.objects.get(pk=connection.pk).last_error,
                 *run.batches.values_list("error_message", flat=True)]:
        for echo in (b64(TOKEN, urlsafe=True), quote(TOKEN, safe=""), TOKEN[3:15]):
            assert echo not in text
