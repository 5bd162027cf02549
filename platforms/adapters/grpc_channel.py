"""The channel credentials of the gRPC adapters (Google's): TLS in production; outside it, gRPC's local
credentials when ``GRPC_PLAINTEXT_LOOPBACK`` is on (tests, the demo, benchmarks) — plain text that gRPC itself only
allows to a loopback peer (the sandbox), so a misconfigured endpoint fails the handshake instead of going out in
the clear. The call credentials (the OAuth bearer token) go over either, as over TLS."""

from __future__ import annotations

import grpc
from django.conf import settings


def channel_credentials() -> grpc.ChannelCredentials | None:
    """None means TLS with the system roots (what the client libraries do by default)."""
    if settings.GRPC_PLAINTEXT_LOOPBACK:
        return grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    return None
