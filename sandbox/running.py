"""All fake platforms on loopback at once, and the settings / environment that point adapters at them.

Used by browser tests and end-to-end tests that run a real worker: the test process gets the
settings overrides, the worker subprocess the equivalent environment variables.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class RunningFakes:
    http_url: str
    http: dict  # platform code -> fake object (and "google_oauth")
    google: object  # FakeGoogleAdsServer
    datamanager: object = None  # FakeDataManagerServer

    def endpoints(self) -> dict[str, str]:
        return {
            "meta": f"{self.http_url}/meta",
            "google_ads": self.google.address,
            "google_dm": self.datamanager.address,
            "linkedin": f"{self.http_url}/linkedin/rest",
            "tiktok": f"{self.http_url}/tiktok/open_api/v1.3",
            "ttd": f"{self.http_url}/ttd/v3",
        }

    def netflix_base_url(self) -> str:
        return f"{self.http_url}/netflix/v1"

    def settings_overrides(self) -> dict:
        return {
            "PLATFORM_ENDPOINTS": self.endpoints(),
            "GOOGLE_ADS_INSECURE_CHANNEL": True,
            "GOOGLE_DATAMANAGER_INSECURE_CHANNEL": True,
            "GOOGLE_OAUTH_TOKEN_URL": f"{self.http_url}/google-oauth/token",
            "FAKE_PLATFORMS_URL": self.http_url,
        }

    def environment(self) -> dict[str, str]:
        endpoints = self.endpoints()
        return {
            "META_GRAPH_URL": endpoints["meta"],
            "GOOGLE_ADS_ENDPOINT": endpoints["google_ads"],
            "GOOGLE_DATAMANAGER_ENDPOINT": endpoints["google_dm"],
            "LINKEDIN_API_URL": endpoints["linkedin"],
            "TIKTOK_API_URL": endpoints["tiktok"],
            "TTD_API_URL": endpoints["ttd"],
            "GOOGLE_ADS_INSECURE_CHANNEL": "true",
            "GOOGLE_DATAMANAGER_INSECURE_CHANNEL": "true",
            "GOOGLE_OAUTH_TOKEN_URL": f"{self.http_url}/google-oauth/token",
            "FAKE_PLATFORMS_URL": self.http_url,
            # The worker runs without TESTING: let its egress guard reach the sandbox (never in production).
            "EGRESS_ALLOW_SANDBOX": "true",
        }


@contextmanager
def running_fake_platforms():
    from sandbox.base import FakeServer
    from sandbox.google_ads import FakeGoogleAdsServer
    from sandbox.google_datamanager import FakeDataManagerServer
    from sandbox.serve import build_http_fakes

    fakes = build_http_fakes()
    for fake in fakes:
        fake.record_requests = True
    by_code = dict(zip(["meta", "linkedin", "tiktok", "ttd", "netflix", "google_oauth"], fakes, strict=True))
    server = FakeServer(fakes).start()
    google = FakeGoogleAdsServer().start()
    datamanager = FakeDataManagerServer().start()
    try:
        yield RunningFakes(http_url=server.url, http=by_code, google=google, datamanager=datamanager)
    finally:
        datamanager.stop()
        google.stop()
        server.stop()
