"""Reads for the Platforms page and the connection pages. Always scoped to one owner."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django import forms
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

    @property
    def oauth_available(self) -> bool:
        """"Continue with <platform>" is offered: the platform has a sign-in and its app is configured."""
        from credentials.oauth import available

        return available(self.platform.code)

    @property
    def status(self) -> tuple[str, str]:
        """(badge css status, label) for the card's header: the worst state among its connections first."""
        counts = Counter(view.connection.status for view in self.connections)
        total = len(self.connections)
        if not total:
            return "none", "Not connected"
        for status, label in ((Connection.Status.ERROR, "in error"), (Connection.Status.ACTIVE, "active"),
                              (Connection.Status.DISCONNECTED, "disconnected")):
            if counts[status]:
                if total == 1:
                    return status, label.capitalize()
                return status, f"{counts[status]} of {total} {label}"
        return "none", f"{total} connections"


def connections_of(owner) -> QuerySet[Connection]:
    return Connection.objects.filter(owner=owner).select_related("platform")


def config_value_text(form_field, value) -> str:
    """A connection setting as a page shows it: a choice by its label ("Granted", not the "GRANTED" the platform is
    sent), a yes/no setting (a ticked box such as Google's Customer Match terms) as "Yes" or "No"."""
    if isinstance(value, bool) or isinstance(form_field, forms.BooleanField):
        return "Yes" if value in (True, "True", "true", "on", "1", 1) else "No"
    choices = {str(key): str(text) for key, text in getattr(form_field, "choices", ()) or ()}
    return choices.get(str(value), str(value))


def connection_view(connection: Connection) -> ConnectionView:
    code = connection.platform.code
    form_class = credentials_form_for(code)
    labels = secret_labels(code)
    identifiers = []
    for name, value in (connection.config or {}).items():
        form_field = form_class.base_fields.get(name)
        if value in ("", None) or form_field is None:
            continue
        identifiers.append((str(form_field.label or name), config_value_text(form_field, value)))
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


def syncs_using(*, connection: Connection) -> list:
    """The syncs that send an audience to this connection, by audience name, each with its latest run
    (``last_run_pk``, ``last_run_status``, ``last_run_label``, ``last_run_at``; empty before the first run).

    The one place the connection pages name the Sync model: it lives in audiences.models today and moves
    to the syncs app; only this import changes then.
    """
    from django.db.models import OuterRef, Subquery

    from audiences.models import Audience
    from syncs.models import Sync, SyncRun

    latest = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-created_at", "-pk")
    syncs = list(
        Sync.objects.filter(connection=connection, owner=connection.owner)
        .exclude(audience__status=Audience.Status.DELETING)
        .select_related("audience")
        .annotate(
            last_run_pk=Subquery(latest.values("pk")[:1]),
            last_run_status=Subquery(latest.values("status")[:1]),
            last_run_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("audience__name", "pk")
    )
    labels = dict(SyncRun.Status.choices)
    for sync in syncs:
        sync.last_run_label = labels.get(sync.last_run_status, "")
    return syncs


def connection_ids_to_revalidate() -> list[int]:
    """Active connections, and those in error (so a fixed token or restored permission recovers)."""
    return list(
        Connection.objects.filter(status__in=[Connection.Status.ACTIVE, Connection.Status.ERROR])
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def render_markdown(text: str) -> str:
    """Markdown as HTML for our own documents (a partner contract): CommonMark with tables, raw HTML escaped, so the
    page can include the result as it is. Headings move one level down: the page has its own h1."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return md.renderer.render(tokens, md.options, {})

