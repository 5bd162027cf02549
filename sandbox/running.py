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
        """Platform code -> where its sandbox runs here, from each adapter's sandbox endpoint (an HTTP path on the
        shared server, or the gRPC servers started for Google)."""
        from platforms.adapters.registry import all_adapter_classes

        grpc = {"google_ads": self.google.address, "google_dm": self.datamanager.address}
        endpoints = {}
        for code, adapter in all_adapter_classes().items():
            if adapter.sandbox_endpoint.startswith("/"):
                endpoints[code] = self.http_url + adapter.sandbox_endpoint
            elif code in grpc:
                endpoints[code] = grpc[code]
        return endpoints

    def netflix_base_url(self) -> str:
        return f"{self.http_url}/netflix/v1"

    def settings_overrides(self) -> dict:
        return {
            "PLATFORM_ENDPOINTS": self.endpoints(),
            "GRPC_PLAINTEXT_LOOPBACK": True,
            "GOOGLE_OAUTH_TOKEN_URL": f"{self.http_url}/google-oauth/token",
            "FAKE_PLATFORMS_URL": self.http_url,
            "OAUTH_USE_SANDBOX": True,  # sign-in goes to the fakes' consent screens and token endpoints
        }

    def environment(self) -> dict[str, str]:
        """The same for a worker subprocess: each adapter's own environment variable."""
        from platforms.adapters.registry import all_adapter_classes

        classes = all_adapter_classes()
        return {
            **{classes[code].endpoint_setting: url for code, url in self.endpoints().items()},
            "GRPC_PLAINTEXT_LOOPBACK": "true",
            "GOOGLE_OAUTH_TOKEN_URL": f"{self.http_url}/google-oauth/token",
            "FAKE_PLATFORMS_URL": self.http_url,
            "OAUTH_USE_SANDBOX": "true",
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
