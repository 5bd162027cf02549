"""Serve every fake ad platform on loopback for demo mode (started by `make run`).

HTTP fakes share one server (default 127.0.0.1:8765), each under its prefix (/meta, /linkedin,
/tiktok, /ttd, /netflix, /google-oauth); the Google Ads fake speaks gRPC on its own port (8766), the Google Data
Manager fake on another (8767).
The adapters find them through settings.PLATFORM_ENDPOINTS, which point here when DEMO_MODE is on.
Outside demo mode this process idles, so `make run`'s process group stays up.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from urllib.parse import urlsplit


def build_http_fakes():
    from tests.fakes.google_oauth import FakeGoogleOAuth
    from tests.fakes.linkedin import FakeLinkedIn
    from tests.fakes.meta import FakeMetaGraph
    from tests.fakes.netflix import FakeNetflix
    from tests.fakes.tiktok import FakeTikTok
    from tests.fakes.ttd import FakeTradeDesk

    fakes = [FakeMetaGraph(), FakeLinkedIn(), FakeTikTok(), FakeTradeDesk(), FakeNetflix(), FakeGoogleOAuth()]
    for fake in fakes:
        # A long-running demo must not keep every request body in memory.
        fake.record_requests = False
    return fakes


def main(argv=None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.settings")
    import django

    django.setup()
    from django.conf import settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", default=settings.FAKE_PLATFORMS_URL, help="base URL of the HTTP fakes")
    parser.add_argument("--grpc", default=settings.PLATFORM_ENDPOINTS["google_ads"], help="Google fake host:port")
    parser.add_argument("--datamanager", default=settings.PLATFORM_ENDPOINTS["google_dm"],
                        help="Google Data Manager fake host:port")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    if not settings.DEMO_MODE:
        print("Demo mode is off: the fake platforms are not started.", flush=True)
        stop.wait()
        return

    from tests.fakes.base import FakeServer
    from tests.fakes.google_ads import FakeGoogleAdsServer
    from tests.fakes.google_datamanager import FakeDataManagerServer

    http = urlsplit(args.http)
    server = FakeServer(build_http_fakes(), host=http.hostname or "127.0.0.1", port=http.port or 8765).start()
    grpc_host, _, grpc_port = args.grpc.rpartition(":")
    google = FakeGoogleAdsServer(host=grpc_host or "127.0.0.1", port=int(grpc_port)).start()
    dm_host, _, dm_port = args.datamanager.rpartition(":")
    datamanager = FakeDataManagerServer(host=dm_host or "127.0.0.1", port=int(dm_port))
    datamanager.record_requests = False  # a long-running demo must not keep every request in memory
    datamanager.start()
    print(f"Fake platforms: HTTP on {server.url}, Google Ads gRPC on {google.address}, Google Data Manager gRPC on "
          f"{datamanager.address}", flush=True)
    try:
        stop.wait()
    finally:
        datamanager.stop()
        google.stop()
        server.stop()


if __name__ == "__main__":
    main()
