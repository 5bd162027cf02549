"""Content-Security-Policy on every page, no inline code in templates, and the debug page masking passwords
inside URL-valued settings and environment variables."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory, override_settings
from django.views.debug import technical_500_response

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/platforms/", "/audiences/"])
def test_every_page_carries_a_strict_content_security_policy(alice_client, path):
    response = alice_client.get(path)
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "inline <style>"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event-handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\bhx-on", re.I), "hx-on (evaluated code)"),
    (re.compile(r"\bhref=\"data:", re.I), "data: URL"),
]


def test_no_template_has_inline_script_style_or_handlers():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{template.relative_to(TEMPLATES)}:{line}: {what}")
    assert found == []


def test_json_data_scripts_are_allowed_because_they_never_run():
    # The demo values box uses json_script (type="application/json"): data, not code, under any CSP.
    pattern = INLINE[0][0]
    assert not pattern.search('<script id="x" type="application/json">{"a": 1}</script>')
    assert pattern.search("<script>alert(1)</script>")


def _debug_page(request, database_url: str) -> str:
    """The technical 500 page for an error raised here (``database_url`` is a frame variable on it)."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_the_debug_page_masks_passwords_in_url_settings_and_environment():
    # Built at run time: the debug page also shows source lines, which must not hold the passwords whole.
    passwords = {name: f"{name}-{'Pa55word'}-{len(name)}" for name in ("redis", "broker", "database", "frame")}
    request = RequestFactory().get("/boom", DATABASE_URL=f"postgres://am:{passwords['database']}@db.internal:5432/am")
    with override_settings(DEBUG=True, REDIS_URL=f"redis://:{passwords['redis']}@cache.internal:6379/0",
                           CELERY_BROKER_URL=f"rediss://default:{passwords['broker']}@cache.internal:6380/1"):
        page = _debug_page(request, f"postgres://am:{passwords['frame']}@db.internal:5432/am")
    for password in passwords.values():
        assert password not in page
    assert "cache.internal:6379" in page and "db.internal:5432" in page  # the rest stays useful


def test_mask_url_passwords_keeps_urls_without_a_password():
    from activation_manager.reporting import mask_url_passwords

    assert mask_url_passwords("redis://cache:6379/0") == "redis://cache:6379/0"
    assert mask_url_passwords("postgres://user@db/x") == "postgres://user@db/x"
    assert mask_url_passwords("a postgres://u:p@h/x b") == "a postgres://u:********************@h/x b"
