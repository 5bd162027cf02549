"""TikTok's and LinkedIn's documented examples: the values their pages give, and what we send for them.

TikTok Ads help, "List of supported IDs and formats for a customer file" (updated August 2025),
https://ads.tiktok.com/help/article/list-of-supported-ids-and-formats-for-a-customer-file -- phone: "Remove symbols,
including "+" sign"; "The US phone number (657)777-0000 is normalized to "16577770000". The international phone number
374-93-828222 is normalized to "37493828222"". Email: "Lowercase only"; "Remove '+' and any characters following the
'+' symbol until '@'."; example "firstname-lastname@gmail.com".

TikTok Ads help, "How to create a Custom Audience with a customer file" (updated September 2025),
https://ads.tiktok.com/help/article/how-to-create-a-custom-audience-with-a-customer-file -- its table's hashed
examples: email "Normalized: "janedoe@gmail.com" Hashed:
d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69";
phone "INTL: +37493828222 Hashed: 65b7e6dcf6f4310f8d7cbfbd78289a753062fb054d6664fb9aaac5df66a422d4" (the hash is of
the digits without "+": this decided TikTok's PHONE_SHA256 form); MAID "Normalized: 5f3a2b18-9c4d-4e7f-b8e2-
17d3a1e69b25 Hashed: 83dc3f5f32b9472613b0f038d36f22585a609d018af6f6067f50da318bf354bd".

LinkedIn, "DMP Segment Users" (https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/
create-and-manage-segment-users): "SHA256_EMAIL A HEX encoded string with length = 64"; GOOGLE_AID the Android
advertising id. LinkedIn's pages give no hashed example value; its rule is the trimmed, lowercased address (Adobe's
LinkedIn destination: "Trim all leading and trailing spaces", "hash the lowercase string", "Ensure that the hashed
string is all lowercase", its example "55e79200c1635b37ad31a378c39feb12f120f116625093a19bc32fff15041149").
"""

from __future__ import annotations

import hashlib
import re

import pytest

from platforms.matchkeys import prepare


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- TikTok -------------------------------------------------------------------------------------------------


def test_tiktoks_published_email_hash():
    assert prepare("tiktok", "email", "janedoe@gmail.com") == (
        "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69")
    assert prepare("tiktok", "email", " JaneDoe@Gmail.com ") == prepare("tiktok", "email", "janedoe@gmail.com")


def test_tiktoks_published_phone_hash_is_of_the_digits_without_plus():
    published = "65b7e6dcf6f4310f8d7cbfbd78289a753062fb054d6664fb9aaac5df66a422d4"
    assert sha("37493828222") == published != sha("+37493828222")
    assert prepare("tiktok", "phone", "+37493828222") == published
    # "374-93-828222 is normalized to "37493828222"": written with its country code, read for an Armenian list.
    assert prepare("tiktok", "phone", "374-93-828222", default_region="AM") == published


def test_tiktoks_us_phone_example_normalizes_to_the_digits_with_country_code():
    # "(657)777-0000 is normalized to "16577770000"": "Add country code if missing, even in the US".
    assert prepare("tiktok", "phone", "(657)777-0000", default_region="US") == sha("16577770000")


def test_tiktoks_published_maid_hash_and_its_case_rule():
    published = "83dc3f5f32b9472613b0f038d36f22585a609d018af6f6067f50da318bf354bd"
    assert prepare("tiktok", "maid", "5f3a2b18-9c4d-4e7f-b8e2-17d3a1e69b25") == published
    # "Case: all uppercase or all lowercase": we lowercase, so an uppercase id hashes the same.
    assert prepare("tiktok", "maid", "5F3A2B18-9C4D-4E7F-B8E2-17D3A1E69B25") == published


@pytest.mark.parametrize(("raw", "normalized"), [
    ("firstname-lastname@gmail.com", "firstname-lastname@gmail.com"),  # TikTok's example, kept as is
    ("firstname-lastname+promo@gmail.com", "firstname-lastname@gmail.com"),
    ("Jane.Doe+Work@Example.com", "jane.doe@example.com"),  # every domain; dots kept (August 2025 page)
])
def test_tiktoks_email_rule_drops_the_plus_part_for_every_domain(raw, normalized):
    assert prepare("tiktok", "email", raw) == sha(normalized)


# --- LinkedIn -----------------------------------------------------------------------------------------------


def test_linkedins_sha256_email_is_a_64_character_lowercase_hex_of_the_trimmed_lowercased_address():
    value = prepare("linkedin", "email", "  JohnDoe@Example.com ")
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert value == "55e79200c1635b37ad31a378c39feb12f120f116625093a19bc32fff15041149"  # Adobe's example hash


def test_linkedin_keeps_the_plus_part_and_dots_it_asks_nothing_about():
    assert prepare("linkedin", "email", "John.Doe+x@gmail.com") == sha("john.doe+x@gmail.com")


def test_linkedins_google_aid_is_the_unhashed_lowercase_id():
    assert prepare("linkedin", "maid", "6D92078A-8246-4BA4-AE5B-76104861E7DC") == "6d92078a-8246-4ba4-ae5b-76104861e7dc"
