"""Every fake ad platform on loopback, for demo mode (``manage.py run_sandbox``, started by ``make run``).

HTTP fakes share one server (default 127.0.0.1:8765), each under its prefix (/meta, /linkedin,
/tiktok, /ttd, /netflix, /google-oauth); the Google Ads fake speaks gRPC on its own port (8766).
The adapters find them through settings.PLATFORM_ENDPOINTS, which point here when DEMO_MODE is on.
"""

from __future__ import annotations


def build_http_fakes():
    from sandbox.google_oauth import FakeGoogleOAuth
    from sandbox.linkedin import FakeLinkedIn
    from sandbox.meta import FakeMetaGraph
    from sandbox.netflix import FakeNetflix
    from sandbox.tiktok import FakeTikTok
    from sandbox.ttd import FakeTradeDesk

    fakes = [FakeMetaGraph(), FakeLinkedIn(), FakeTikTok(), FakeTradeDesk(), FakeNetflix(), FakeGoogleOAuth()]
    for fake in fakes:
        # A long-running demo must not keep every request body in memory.
        fake.record_requests = False
    return fakes
