"""Reads for the Platforms page and the connection pages. Always scoped to one owner."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from credentials.forms import credentials_form_for, secret_labels
from credentials.models import Connection, ConnectionEvent, mask_secret
from platforms.models import Platform


@dataclass
class ConnectionView:
    """A connection as a page may show it: identifiers and masked secret tails only."""

    connection: Connection
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    secret_tails: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PlatformCard:
    platform: Platform
    connections: list[ConnectionView] = field(default_factory=list)


def connections_of(owner) -> QuerySet[Connection]:
    return Connection.objects.filter(owner=owner).select_related("platform")


def connection_view(connection: Connection) -> ConnectionView:
    code = connection.platform.code
    form_class = credentials_form_for(code)
    labels = secret_labels(code)
    identifiers = []
    for name, value in (connection.config or {}).items():
        form_field = form_class.base_fields.get(name)
        if value in ("", None) or form_field is None:
            continue
        identifiers.append((str(form_field.label or name), str(value)))
    secrets = connection.secrets or {}
    order = list(labels) + sorted(set(secrets) - set(labels))
    tails = [
        (labels.get(name, name.replace("_", " ").capitalize()), mask_secret(secrets[name]))
        for name in order
        if secrets.get(name)
    ]
    return ConnectionView(connection=connection, identifiers=identifiers, secret_tails=tails)


def platform_cards(*, owner) -> list[PlatformCard]:
    """One card per active platform with the owner's connections on it."""
    cards = {p.pk: PlatformCard(platform=p) for p in Platform.objects.filter(active=True).order_by("name")}
    for connection in connections_of(owner).filter(platform__in=list(cards)).order_by("label"):
        cards[connection.platform_id].connections.append(connection_view(connection))
    return list(cards.values())


def platform_card(*, owner, platform: Platform) -> PlatformCard:
    connections = connections_of(owner).filter(platform=platform).order_by("label")
    return PlatformCard(platform=platform, connections=[connection_view(c) for c in connections])


def connection_events(*, connection: Connection, limit: int = 50) -> list[ConnectionEvent]:
    return list(
        ConnectionEvent.objects.filter(connection=connection, owner=connection.owner)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def connection_ids_to_revalidate() -> list[int]:
    """Active connections, and those in error (so a fixed token or restored permission recovers)."""
    return list(
        Connection.objects.filter(status__in=[Connection.Status.ACTIVE, Connection.Status.ERROR])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
