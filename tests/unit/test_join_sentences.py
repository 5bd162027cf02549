"""A platform's words and our hint read as sentences (platforms.errors.join_sentences)."""

import pytest

from platforms.errors import join_sentences


@pytest.mark.parametrize(("parts", "expected"), [
    (("Meta: Invalid OAuth access token - Cannot parse access token", "Generate a new access token."),
     "Meta: Invalid OAuth access token - Cannot parse access token. Generate a new access token."),
    (("TTD: the token is invalid.", "Check the API token"), "TTD: the token is invalid. Check the API token."),
    (("Is it on?", ""), "Is it on?"),
    (("  Spaces  ", None, "done!"), "Spaces. done!"),
])
def test_each_part_ends_with_a_full_stop_and_blank_parts_are_dropped(parts, expected):
    assert join_sentences(*parts) == expected

