"""Serve the sandbox platforms on loopback for demo mode: ``python manage.py run_sandbox`` (``make run`` starts it).

HTTP fakes share one server (FAKE_PLATFORMS_URL, default 127.0.0.1:8765), each under its prefix; the Google Ads
fake speaks gRPC on its own port (8766), the Google Data Manager fake on another (8767). Outside demo mode the
command idles, so `make run`'s process group stays up the same way in both modes.
"""

from __future__ import annotations

import signal
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the sandbox (fake) ad platforms on loopback for demo mode."

    def add_arguments(self, parser):
        parser.add_argument("--http", default=settings.FAKE_PLATFORMS_URL, help="base URL of the HTTP fakes")
        from platforms.adapters.registry import get_adapter_class

        parser.add_argument("--grpc", default=get_adapter_class("google_ads").endpoint_url(),
                            help="Google Ads sandbox host:port")
        parser.add_argument("--datamanager", default=get_adapter_class("google_dm").endpoint_url(),
                            help="Google Data Manager sandbox host:port")

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        if not settings.DEMO_MODE:
            self.stdout.write("Demo mode is off: the sandbox platforms are not started.")
            self.stdout.flush()
            stop.wait()
            return

        from sandbox.base import FakeServer
        from sandbox.google_ads import FakeGoogleAdsServer
        from sandbox.google_datamanager import FakeDataManagerServer
        from sandbox.serve import build_http_fakes

        http = urlsplit(options["http"])
        server = FakeServer(build_http_fakes(), host=http.hostname or "127.0.0.1", port=http.port or 8765).start()
        grpc_host, _, grpc_port = options["grpc"].rpartition(":")
        google = FakeGoogleAdsServer(host=grpc_host or "127.0.0.1", port=int(grpc_port)).start()
        dm_host, _, dm_port = options["datamanager"].rpartition(":")
        datamanager = FakeDataManagerServer(host=dm_host or "127.0.0.1", port=int(dm_port))
        datamanager.record_requests = False  # a long-running demo must not keep every request in memory
        datamanager.start()
        self.stdout.write(f"Sandbox platforms: HTTP on {server.url}, Google Ads gRPC on {google.address}, "
                          f"Google Data Manager gRPC on {datamanager.address}")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            datamanager.stop()
            google.stop()
            server.stop()
