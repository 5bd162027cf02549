"""The alert settings page: channels, events, "Send a test", and the latest incidents with what was sent.
Everything is the signed-in user's own (no object ids in the URLs)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from alerts import selectors, services
from alerts.forms import AlertSettingsForm


def _page(request, form, *, status: int = 200):
    return render(request, "alerts/settings.html", {
        "form": form, "incidents": selectors.recent_incidents(owner=request.user),
        "account_email": request.user.email,
    }, status=status)


@require_http_methods(["GET", "POST"])
def alert_settings(request):
    current = services.settings_for(request.user)
    if request.method == "GET":
        return _page(request, AlertSettingsForm(initial={
            "email_enabled": current.email_enabled, "email": current.email, "webhook_enabled": current.webhook_enabled,
            "webhook_url": current.webhook_url, "events": current.events,
        }))
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    try:
        services.save_settings(owner=request.user, **form.cleaned_data)
    except services.AlertSettingsError as exc:
        form.add_error(exc.field, exc.message)
        return _page(request, form)
    messages.success(request, "Alert settings saved.")
    return HttpResponseRedirect(reverse("alert_settings"))


@require_POST
def alert_test(request):
    """"Send a test": one message through each channel now, and what happened."""
    results = services.send_test(owner=request.user)
    if not results:
        messages.warning(request, "No channel is on: turn on e-mail or a webhook (and save) first.")
    for result in results:
        channel = "E-mail" if result.channel == "email" else "Webhook"
        if result.ok:
            messages.success(request, f"{channel}: test alert sent.")
        else:
            messages.error(request, f"{channel}: the test alert was not sent — {result.message}")
    return HttpResponseRedirect(reverse("alert_settings"))
