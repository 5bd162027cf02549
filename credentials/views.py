"""Platforms page and connection actions.

One partial (the platform card) answers every HTMX action: a form with errors re-renders the card
with the form open, a successful action re-renders it closed with a notice. Without HTMX the same
views render the whole page (errors) or redirect back to it (success). The connection's own page
posts the same actions without HTMX and with ``return_to=connection``, and comes back to itself.
Every connection is looked up through the signed-in user's own connections, so another user's id
is a 404.

A refused attempt marks the fields the platform's answer names, and keeps the other secrets for the
retry (encrypted in the session, never rendered: see credentials.drafts).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from credentials import drafts, oauth, selectors, services
from credentials.forms import credentials_form_for, fields_named_in
from credentials.models import Connection
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS

CARD_TEMPLATE = "credentials/partials/platform_card.html"
DETAIL_TEMPLATE = "credentials/connection_detail.html"
KEPT_HELP = "Kept from your last attempt (never shown). Leave it blank to use it again, or enter a new value."


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


def _from_connection_page(request) -> bool:
    return (request.POST.get("return_to") or request.GET.get("return_to")) == "connection"


def _detail_response(request, connection: Connection, *, form=None):
    """The connection's own page; with ``form``, its edit form open (posted without HTMX)."""
    return render(request, DETAIL_TEMPLATE, {
        "view": selectors.connection_view(connection),
        "events": selectors.connection_events(connection=connection),
        "syncs": selectors.syncs_using(connection=connection),
        "card": selectors.PlatformCard(platform=connection.platform),
        "form": form,
        "form_action": reverse("connection_edit", args=[connection.pk]),
        "editing": connection,
        "plain_form": True,
    })


def _done(request, platform: Platform, notice: tuple[str, str], *, connection: Connection | None = None):
    """The updated card (HTMX); else a message and back to the Platforms page, or to the connection's page
    when the action came from there (and the connection still exists)."""
    if request.htmx:
        return _card_response(request, platform, notice=notice)
    level = {"ok": messages.SUCCESS, "error": messages.ERROR}.get(notice[0], messages.WARNING)
    messages.add_message(request, level, notice[1])
    if connection is not None and _from_connection_page(request):
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))
    return HttpResponseRedirect(_platforms_url(platform))


def _apply_rejection(form, exc: services.CredentialsRejected, *, platform: Platform) -> set[str]:
    """Show why the attempt failed, on the fields at fault where we can tell; return the secret fields
    whose value must not be kept for the retry (those at fault, or all when the fault is not named)."""
    secret_names = set(form.secret_fields)
    if isinstance(exc, services.MissingSecrets):
        for name in exc.names:
            form.add_error(name, "Enter this value: none is stored.")
        return set(exc.names)
    if exc.field is not None:  # ours (a duplicate label): the platform was not asked
        form.add_error(exc.field, exc.message)
        return set()
    form.add_error(None, exc.message)
    if exc.passing:  # unreachable or throttling: nothing was said about the credentials
        return set()
    named = fields_named_in(platform.code, exc.message)
    for name in named:
        if name in secret_names:
            form.add_error(name, f"{platform.name} refused this value: enter it again.")
        else:
            form.add_error(name, f"Check this value: {platform.name}’s answer names it.")
    return set(named) & secret_names if named else secret_names


def _mark_kept(form, names) -> None:
    """Kept secrets are optional (blank uses them) and say so; the others get back their own help text."""
    if not hasattr(form, "_before_kept"):
        form._before_kept = {n: (form.fields[n].required, form.fields[n].help_text) for n in form.secret_fields}
    for name in form.secret_fields:
        form_field = form.fields[name]
        if name in names:
            form_field.required = False
            form_field.help_text = KEPT_HELP
            form_field.widget.attrs["placeholder"] = "Kept from your last attempt"
        else:
            form_field.required, form_field.help_text = form._before_kept[name]
            form_field.widget.attrs.pop("placeholder", None)
        form[name].help_text = form_field.help_text  # a bound field copies it when it is first built
    form.kept_secrets = frozenset(names)


def _attempt(request, form, *, platform: Platform, scope: str, save):
    """Validate the form, then ``save(label, config, secrets)`` with the kept secrets filling blank fields.

    Returns the saved connection, or None with the form carrying its errors and the draft updated: the
    secrets not at fault (typed now or kept before) are kept for the next attempt.
    """
    kept = drafts.kept(request, scope=scope)
    _mark_kept(form, set(kept) & set(form.secret_fields))
    if not form.is_valid():
        # The platform was not asked: keep every secret that was typed correctly, for the retry.
        typed = {n: form.cleaned_data.get(n) for n in form.secret_fields if n not in form.errors}
        keep = {**kept, **{n: v for n, v in typed.items() if v}}
        drafts.keep(request, scope=scope, secrets=keep)
        _mark_kept(form, set(keep))
        return None
    label, config, secrets = form.split()
    secrets = {**kept, **secrets}  # a value typed now replaces the kept one
    try:
        connection = save(label, config, secrets)
    except services.CredentialsRejected as exc:
        refused = _apply_rejection(form, exc, platform=platform)
        keep = {n: v for n, v in secrets.items() if n not in refused}
        drafts.keep(request, scope=scope, secrets=keep)
        _mark_kept(form, set(keep))
        return None
    drafts.forget(request, scope=scope)
    return connection


# Pages ------------------------------------------------------------------------------------------

@require_GET
def platform_list(request):
    return render(request, "credentials/platform_list.html", {"cards": selectors.platform_cards(owner=request.user)})


@require_GET
def platform_card(request, platform_code):
    """The card, closed (the form's Cancel button): what was kept for its forms is forgotten."""
    platform = _platform(platform_code)
    drafts.forget(request, platform_code=platform.code)
    return _card_response(request, platform)


@require_GET
def connection_detail(request, connection_pk):
    """The connection's page: details, actions, the syncs that use it, its history; ``?edit=1`` opens the
    edit (or reconnect) form in place."""
    connection = _connection(request, connection_pk)
    form = None
    if request.GET.get("edit") == "1":
        drafts.forget(request, scope=drafts.scope_for(connection.platform.code, connection.pk))
        form = _edit_form(connection)
    return _detail_response(request, connection, form=form)


@require_GET
def partner_contract(request, platform_code):
    """The contract of a partner integration (a platform without a public audience API), from its Markdown file."""
    platform = _platform(platform_code)
    contract = getattr(platform.adapter_class, "partner_contract", "")
    if not contract:
        raise Http404("This platform has no partner contract.")
    try:
        text = (settings.BASE_DIR / contract).read_text(encoding="utf-8")
    except OSError:
        text = None
    return render(request, "credentials/partner_contract.html", {
        "platform": platform,
        "contract_html": selectors.render_markdown(text) if text is not None else None,
    })


# Actions ----------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
def connection_create(request, platform_code):
    platform = _platform(platform_code)
    form_class = credentials_form_for(platform.code)
    action = reverse("connection_create", args=[platform.code])
    auto_id = f"{platform.code}-new-%s"
    scope = drafts.scope_for(platform.code)
    if request.method == "GET":
        drafts.forget(request, scope=scope)  # a fresh form starts from nothing kept
        return _card_response(request, platform, form=form_class(auto_id=auto_id), form_action=action)
    form = form_class(request.POST, auto_id=auto_id)

    def save(label, config, secrets):
        return services.connect(owner=request.user, platform=platform, label=label, config=config,
                                secrets=secrets, actor=request.user)

    connection = _attempt(request, form, platform=platform, scope=scope, save=save)
    if connection is not None:
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
    scope = drafts.scope_for(platform.code, connection.pk)
    if request.method == "GET":
        drafts.forget(request, scope=scope)
        return _card_response(request, platform, form=_edit_form(connection), form_action=action, editing=connection)
    form = _edit_form(connection, request.POST)

    def save(label, config, secrets):
        try:
            return services.update_connection(connection=connection, label=label, config=config, secrets=secrets,
                                              actor=request.user)
        except services.CredentialsRejected:
            connection.refresh_from_db()
            raise

    if _attempt(request, form, platform=platform, scope=scope, save=save) is not None:
        return _done(request, platform, ("ok", f"Saved “{connection.label}”: the connection works."),
                     connection=connection)
    if not request.htmx and _from_connection_page(request):
        return _detail_response(request, connection, form=form)
    return _card_response(request, platform, form=form, form_action=action, editing=connection)


@require_POST
def connection_test(request, connection_pk):
    connection = _connection(request, connection_pk)
    outcome = services.test_connection(connection=connection, actor=request.user)
    level = {"ok": "ok", "failed": "error"}.get(outcome.result, "warn")
    return _done(request, connection.platform, (level, f"“{connection.label}”: {outcome.message}"),
                 connection=connection)


@require_POST
def connection_disconnect(request, connection_pk):
    connection = _connection(request, connection_pk)
    services.disconnect_connection(connection=connection, actor=request.user)
    return _done(request, connection.platform,
                 ("ok", f"Disconnected “{connection.label}”; its secrets were erased. Reconnect to use it again."),
                 connection=connection)


@require_POST
def connection_delete(request, connection_pk):
    connection = _connection(request, connection_pk)
    platform, label = connection.platform, connection.label
    services.delete_connection(connection=connection, actor=request.user)
    return _done(request, platform, ("ok", f"Deleted “{label}”."))



# Sign-in with the platform (credentials/oauth.py) -----------------------------------------------------------------

def _signin_failed(request, platform: Platform, message: str, *, connection_pk=None):
    messages.error(request, message)
    if connection_pk:
        return HttpResponseRedirect(reverse("connection_detail", args=[connection_pk]))
    return HttpResponseRedirect(_platforms_url(platform))


@require_GET
def oauth_start(request, platform_code):
    """"Continue with <platform>": to the platform's consent screen (``?connection=<pk>``: sign in again for one of
    the user's connections)."""
    platform = _platform(platform_code)
    connection = None
    if request.GET.get("connection"):
        try:
            connection = _connection(request, int(request.GET["connection"]))
        except ValueError:
            raise Http404("No such connection.") from None
        if connection.platform_id != platform.pk:
            raise Http404("No such connection.")
    try:
        url = oauth.start(request, platform=platform, connection=connection)
    except oauth.SignInFailed as exc:
        return _signin_failed(request, platform, exc.message, connection_pk=connection and connection.pk)
    return HttpResponseRedirect(url)


@require_GET
def oauth_callback(request, platform_code):
    """Where the platform sends the person back (the redirect URI registered with the platform)."""
    platform = _platform(platform_code)
    try:
        oauth.callback(request, platform=platform)
    except oauth.SignInFailed as exc:
        return _signin_failed(request, platform, exc.message)
    return HttpResponseRedirect(reverse("oauth_accounts", args=[platform.code]))


@require_http_methods(["GET", "POST"])
def oauth_accounts(request, platform_code):
    """The last step of a sign-in: pick the ad account (and the platform's own choices), then connect."""
    platform = _platform(platform_code)
    signin = oauth.pending(request, platform=platform)
    if signin is None:
        return _signin_failed(request, platform, f"There is no sign-in with {platform.name} waiting (it expires after "
                              f"{settings.OAUTH_FLOW_SECONDS // 60} minutes): start again.")
    if request.method == "POST" and request.POST.get("cancel"):
        oauth.forget(request, platform=platform)
        messages.info(request, f"Sign-in with {platform.name} cancelled: nothing was connected.")
        return HttpResponseRedirect(_platforms_url(platform))
    form = oauth.account_form(platform, signin, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        try:
            connection = oauth.finish(request, platform=platform, form=form)
        except oauth.SignInFailed as exc:
            return _signin_failed(request, platform, exc.message)
        if connection is not None:
            messages.success(request, f"Connected “{connection.label}” by signing in with {platform.name}: the "
                             "connection works.")
            return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))
    return render(request, "credentials/oauth_accounts.html", {
        "platform": platform, "form": form, "signin": signin, "card": selectors.PlatformCard(platform=platform),
    })
