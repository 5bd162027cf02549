"""Differential tests: our Google match keys against Google's own Formatter (google-ads-datamanager-util).

For every generated input that both sides accept, ``prepare("google_dm", key, raw)`` (and ``"google_ads"`` where its
encoding is the same) must equal the Formatter's output hashed and hex-encoded the way Google hashes (SHA-256 of the
UTF-8 string, hex). Where we deliberately differ from the Formatter, the difference is pinned by a named example test
below and described in docs/platforms.md:

- phones: the Formatter keeps digits and adds "+" without validating; we parse with phonenumbers (a national number
  gets the audience's country code, an invalid one is refused). Compared on numbers written with their country code.
- names: Google's formatting guide asks to leave out titles and suffixes ("Mrs.", "Jr."); the Formatter formats a
  field it assumes holds only the name, so we remove them and compare on names without them. Cells with digits or
  symbols are damaged data, not names: we keep their letters. We NFC-normalize (the Formatter does not): compared
  on NFC text.
- postal codes: the Formatter only trims; we uppercase non-US codes and collapse inner spaces, and write a US ZIP+4
  as "NNNNN-NNNN". Compared on codes already in that form.
- region codes: the Formatter uppercases any two characters; we accept ISO 3166-1 codes (and names, alpha-3) only.
"""

from __future__ import annotations

import hashlib
import string
import unicodedata

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from platforms import matchkeys as mk
from platforms.matchkeys import prepare

format_module = pytest.importorskip("google.ads.datamanager_util.format")
FORMATTER = format_module.Formatter()
HEX = format_module.Encoding.HEX
many = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOGLE = ("google_dm", "google_ads")


def google(method: str, raw: str) -> str | None:
    """The Formatter's hex SHA-256 (or its unhashed output for region / postal code); None where it refuses."""
    try:
        result = getattr(FORMATTER, method)(raw, HEX) if method.startswith("process_") and method not in (
            "process_region_code", "process_postal_code") else getattr(FORMATTER, method)(raw)
    except ValueError:
        return None
    return result


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- email ------------------------------------------------------------------------------------------------

ATOM = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
LOCAL = st.builds(lambda parts, tag: ".".join(parts) + tag, st.lists(ATOM, min_size=1, max_size=3),
                  st.one_of(st.just(""), ATOM.map(lambda t: "+" + t), st.just("+")))
DOMAIN = st.sampled_from(["gmail.com", "GMail.com", "googlemail.com", "GOOGLEMAIL.COM", "example.com",
                          "Example.ORG", "mail.co.uk", "gmail.co", "sub.gmail.com"])
EMAIL = st.builds(lambda pad1, local, domain, pad2: f"{pad1}{local}@{domain}{pad2}",
                  st.sampled_from(["", " ", "  "]), LOCAL, DOMAIN, st.sampled_from(["", " ", "\t"]))


@many
@given(raw=EMAIL, platform=st.sampled_from(GOOGLE))
@example(raw="Cloudy.SanFrancisco+shopping@gmail.com", platform="google_dm")
@example(raw="user.name+NYC@Example.com", platform="google_dm")
@example(raw="Jefferson.LOVES.Hiking@googlemail.com", platform="google_ads")
def test_email_equals_googles_formatter(raw, platform):
    ours, theirs = prepare(platform, "email", raw), google("process_email_address", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


def test_an_email_whose_gmail_local_part_is_only_a_tag_is_refused_by_google_and_kept_whole_by_us():
    assert google("process_email_address", "+promo@gmail.com") is None
    assert prepare("google_dm", "email", "+promo@gmail.com") == sha("+promo@gmail.com")


# --- phone ------------------------------------------------------------------------------------------------

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
FORMATS = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]


@st.composite
def international_numbers(draw):
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    number = phonenumbers.example_number_for_type(region, kind)
    assume(number is not None)
    text = phonenumbers.format_number(number, draw(st.sampled_from(FORMATS)))
    return draw(st.sampled_from(["", " "])) + text, draw(st.sampled_from(REGIONS + [None]))


@many
@given(case=international_numbers(), platform=st.sampled_from(GOOGLE))
@example(case=("+1 800-555-0100", "US"), platform="google_dm")
def test_phone_written_with_its_country_code_equals_googles_formatter(case, platform):
    raw, region = case
    ours, theirs = prepare(platform, "phone", raw, default_region=region), google("process_phone_number", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


def test_a_national_phone_gets_the_audiences_country_code_which_the_formatter_cannot_know():
    assert prepare("google_dm", "phone", "(650) 253-0000", default_region="US") == sha("+16502530000")
    assert google("process_phone_number", "(650) 253-0000") == sha("+6502530000")  # no country code


# --- given / family name ------------------------------------------------------------------------------------

NAME_CHARS = st.one_of(st.characters(categories=["Lu", "Ll", "Lt", "Lo"]),
                       st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ' -.’")))
NAME = st.builds(lambda pad, text, pad2: unicodedata.normalize("NFC", f"{pad}{text}{pad2}"),
                 st.sampled_from(["", " ", "  "]), st.text(NAME_CHARS, min_size=1, max_size=14),
                 st.sampled_from(["", " "]))


def has_affix(text: str) -> bool:
    value = text.strip().lower()
    return bool(mk._NAME_PREFIX.match(value) or mk._NAME_SUFFIX.search(value))


@many
@given(raw=NAME)
@example(raw="  GivenName  ")
@example(raw="Mary-Ann")
@example(raw="Jean Luc")
@example(raw="O’Brien")
def test_given_name_equals_googles_formatter(raw):
    assume(not has_affix(raw))
    ours, theirs = prepare("google_dm", "first_name", raw), google("process_given_name", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


@many
@given(raw=NAME)
@example(raw="  FamilyName ")
@example(raw="de la Cruz")
@example(raw="Nguyễn")
def test_family_name_equals_googles_formatter(raw):
    assume(not has_affix(raw))
    ours, theirs = prepare("google_dm", "last_name", raw), google("process_family_name", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


@pytest.mark.parametrize(("key", "raw", "expected"), [
    ("first_name", "Mrs. Jane", "jane"), ("first_name", "Dr Ann-Marie", "ann-marie"),
    ("last_name", "Smith Jr.", "smith"), ("last_name", "King, III", "king"),
    ("first_name", "Drew", "drew"), ("last_name", "Sr", "sr"),  # a name, not an affix
])
def test_titles_and_suffixes_are_left_out_as_googles_guide_asks(key, raw, expected):
    assert prepare("google_dm", key, raw) == sha(expected)


def test_a_damaged_name_cell_keeps_its_letters_not_its_symbols():
    assert prepare("google_dm", "first_name", "J0hn#") == sha("jhn")
    assert google("process_given_name", "J0hn#") == sha("j0hn#")


def test_the_google_ads_api_path_keeps_its_letters_only_names():
    assert prepare("google_ads", "first_name", "Mary-Ann") == sha("maryann")
    assert prepare("google_dm", "first_name", "Mary-Ann") == sha("mary-ann") == google("process_given_name",
                                                                                       "Mary-Ann")


# --- region code, postal code --------------------------------------------------------------------------------

CODES = sorted(mk._country_tables()[0])


@many
@given(code=st.sampled_from(CODES), case=st.sampled_from([str.upper, str.lower, str.title]),
       pad=st.sampled_from(["", " ", "  "]), platform=st.sampled_from(GOOGLE))
def test_region_code_equals_googles_formatter(code, case, pad, platform):
    raw = f"{pad}{case(code)}{pad}"
    ours, theirs = prepare(platform, "country", raw), google("process_region_code", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


US_ZIP = st.from_regex(r"\A[0-9]{5}\Z")
US_ZIP4 = st.from_regex(r"\A[0-9]{5}-[0-9]{4}\Z")
OTHER = st.sampled_from([("GB", "SW1A 1AA"), ("GB", "EC1A 1BB"), ("CA", "K1A 0B1"), ("FR", "75008"),
                         ("DE", "10115"), ("PT", "1229-076"), ("NL", "1012 AB"), ("JP", "100-0001")])


@many
@given(case=st.one_of(US_ZIP.map(lambda z: ("US", z)), US_ZIP4.map(lambda z: ("US", z)), OTHER),
       pad=st.sampled_from(["", " "]))
@example(case=("US", "94043-1351"), pad="")
def test_postal_code_equals_googles_formatter(case, pad):
    region, code = case
    raw = f"{pad}{code}{pad}"
    ours, theirs = prepare("google_dm", "postal_code", raw, default_region=region), google("process_postal_code", raw)
    assume(ours is not None and theirs is not None)
    assert ours == theirs


def test_the_google_ads_api_path_sends_five_digit_zips_and_the_data_manager_zip_plus_4():
    assert prepare("google_ads", "postal_code", "94043-1351", default_region="US") == "94043"
    assert prepare("google_dm", "postal_code", "94043-1351", default_region="US") == "94043-1351"
    assert prepare("google_dm", "postal_code", "940431351", default_region="US") == "94043-1351"
    assert google("process_postal_code", "940431351") == "940431351"  # the Formatter only trims
