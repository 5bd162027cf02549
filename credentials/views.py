"""Platforms page and connection actions.

One partial (the platform card) answers every HTMX action: a form with errors re-renders the card
with the form open, a successful action re-renders it closed with a notice. Without HTMX the same
views render the whole page (errors) or redirect back to it (success). Every connection is looked
up through the signed-in user's own connections, so another user's id is a 404.
"""

from __future__ import annotations

import html
import re

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from credentials import selectors, services
from credentials.forms import credentials_form_for
from credentials.models import Connection
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS

CARD_TEMPLATE = "credentials/partials/platform_card.html"
PARTNER_DOCS = {"netflix": settings.BASE_DIR / "docs" / "partners" / "netflix.md"}


def _platform(code: str) -> Platform:
    return get_object_or_404(Platform, code=code, active=True)


def _connection(request, pk: int) -> Connection:
    return get_object_or_404(selectors.connections_of(request.user), pk=pk)


def _platforms_url(platform: Platform) -> str:
    return f"{reverse('platform_list')}#platform-{platform.code}"


def _card_response(request, platform: Platform, *, form=None, form_action="", editing=None, notice=None):
    """The card (HTMX) or the whole page with this card open (no HTMX)."""
    context = {
        "open_code": platform.code,
        "form": form,
        "form_action": form_action,
        "editing": editing,
        "notice": notice,
        "demo_values": _demo_values(platform) if form is not None and editing is None else None,
        "demo_script_id": f"demo-values-{platform.code}",
    }
    if request.htmx:
        context["card"] = selectors.platform_card(owner=request.user, platform=platform)
        return render(request, CARD_TEMPLATE, context)
    context["cards"] = selectors.platform_cards(owner=request.user)
    return render(request, "credentials/platform_list.html", context)


def _demo_values(platform: Platform) -> dict | None:
    # The bundled fakes' credentials (not secrets: they are in the repository) for the demo hint box.
    return DEMO_CREDENTIALS.get(platform.code) if settings.DEMO_MODE else None


def _done(request, platform: Platform, notice: tuple[str, str]):
    if request.htmx:
        return _card_response(request, platform, notice=notice)
    level = {"ok": messages.SUCCESS, "error": messages.ERROR}.get(notice[0], messages.WARNING)
    messages.add_message(request, level, notice[1])
    return HttpResponseRedirect(_platforms_url(platform))


def _apply_rejection(form, exc: services.CredentialsRejected) -> None:
    if isinstance(exc, services.MissingSecrets):
        for name in exc.names:
            form.add_error(name, "Enter this value: none is stored.")
    else:
        form.add_error(exc.field, exc.message)


# Pages ------------------------------------------------------------------------------------------

@require_GET
def platform_list(request):
    return render(request, "credentials/platform_list.html", {"cards": selectors.platform_cards(owner=request.user)})


@require_GET
def platform_card(request, platform_code):
    """The card, closed (the form's Cancel button)."""
    return _card_response(request, _platform(platform_code))


@require_GET
def connection_detail(request, connection_pk):
    connection = _connection(request, connection_pk)
    return render(request, "credentials/connection_detail.html", {
        "view": selectors.connection_view(connection),
        "events": selectors.connection_events(connection=connection),
    })


@require_GET
def netflix_partner_contract(request):
    path = PARTNER_DOCS["netflix"]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        text = None
    return render(request, "credentials/partner_contract.html", {
        "platform": Platform.objects.filter(code="netflix").first(),
        "contract_html": _markdownish(text) if text is not None else None,
    })


# Actions ----------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
def connection_create(request, platform_code):
    platform = _platform(platform_code)
    form_class = credentials_form_for(platform.code)
    action = reverse("connection_create", args=[platform.code])
    auto_id = f"{platform.code}-new-%s"
    if request.method == "GET":
        return _card_response(request, platform, form=form_class(auto_id=auto_id), form_action=action)
    form = form_class(request.POST, auto_id=auto_id)
    if form.is_valid():
        label, config, secrets = form.split()
        try:
            connection = services.connect(owner=request.user, platform=platform, label=label, config=config,
                                          secrets=secrets, actor=request.user)
        except services.CredentialsRejected as exc:
            _apply_rejection(form, exc)
        else:
            return _done(request, platform, ("ok", f"Connected “{connection.label}”: the connection works."))
    return _card_response(request, platform, form=form, form_action=action)


def _edit_form(connection: Connection, data=None):
    form_class = credentials_form_for(connection.platform.code)
    form = form_class(data, initial={"label": connection.label, **connection.config}, editing=True,
                      auto_id=f"c{connection.pk}-%s")
    stored = connection.secrets or {}
    for name in form.secret_fields:
        if not stored.get(name):  # nothing stored (e.g. after a disconnect): blank cannot mean "keep"
            form.fields[name].required = form_class.base_fields[name].required
            form.fields[name].help_text = ""
    return form


@require_http_methods(["GET", "POST"])
def connection_edit(request, connection_pk):
    connection = _connection(request, connection_pk)
    platform = connection.platform
    action = reverse("connection_edit", args=[connection.pk])
    if request.method == "GET":
        return _card_response(request, platform, form=_edit_form(connection), form_action=action, editing=connection)
    form = _edit_form(connection, request.POST)
    if form.is_valid():
        label, config, secrets = form.split()
        try:
            services.update_connection(connection=connection, label=label, config=config, secrets=secrets,
                                       actor=request.user)
        except services.CredentialsRejected as exc:
            connection.refresh_from_db()
            _apply_rejection(form, exc)
        else:
            return _done(request, platform, ("ok", f"Saved “{connection.label}”: the connection works."))
    return _card_response(request, platform, form=form, form_action=action, editing=connection)


@require_POST
def connection_test(request, connection_pk):
    connection = _connection(request, connection_pk)
    outcome = services.test_connection(connection=connection, actor=request.user)
    level = {"ok": "ok", "failed": "error"}.get(outcome.result, "warn")
    return _done(request, connection.platform, (level, f"“{connection.label}”: {outcome.message}"))


@require_POST
def connection_disconnect(request, connection_pk):
    connection = _connection(request, connection_pk)
    services.disconnect_connection(connection=connection, actor=request.user)
    return _done(request, connection.platform,
                 ("ok", f"Disconnected “{connection.label}”; its secrets were erased. Reconnect to use it again."))


@require_POST
def connection_delete(request, connection_pk):
    connection = _connection(request, connection_pk)
    platform, label = connection.platform, connection.label
    services.delete_connection(connection=connection, actor=request.user)
    return _done(request, platform, ("ok", f"Deleted “{label}”."))


# A very small Markdown subset for the partner contract: headings, lists, code blocks, paragraphs.
def _markdownish(text: str) -> str:
    out: list[str] = []
    paragraph: list[str] = []
    in_list = in_code = False

    def inline(value: str) -> str:
        value = html.escape(value)
        value = re.sub(r"`([^`]+)`", r"<code>\1</code>", value)
        return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", value)

    def flush():
        nonlocal in_list
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        if line.startswith("```"):
            if in_code:
                out.append("</code></pre>")
            else:
                flush()
                out.append("<pre><code>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line) + "\n")
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        item = re.match(r"^\s*[-*]\s+(.*)$", line)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 1, 5)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif item:
            if paragraph:
                out.append(f"<p>{inline(' '.join(paragraph))}</p>")
                paragraph.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(item.group(1))}</li>")
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.strip())
    flush()
    if in_code:
        out.append("</code></pre>")
    return "".join(out)
