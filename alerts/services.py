"""Alerts: raising and resolving incidents, the users' channel settings, and sending the messages.

The product raises incidents where things happen, each with one short call (``connection_broke``, ``run_ended``,
``schedule_skipped`` ...). An incident is a row created inside the caller's transaction (it disappears with it if
that rolls back); its messages are sent after the commit by a retried task on the default queue
(``alerts.tasks.deliver_incident``). While an incident is open, raising it again only counts an occurrence: one
message per incident, however often the failure repeats.

What a message says is ours: the names the user gave (connection label, audience name), counts, and a link to the
page. Never a secret, never a platform's raw error text (it may quote an account holder's address), never a
customer's data. Raising an alert never breaks the caller: any error is logged (type only) and swallowed.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from activation_manager import egress
from alerts.models import AlertSettings, Delivery, Event, Incident, all_events

logger = logging.getLogger(__name__)


class AlertSettingsError(Exception):
    """A setting that cannot be saved; ``message`` is safe to show, ``field`` names the form field."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


# Settings ---------------------------------------------------------------------------------------------------

def settings_for(owner) -> AlertSettings:
    """The user's alert settings (the defaults, unsaved, when they never changed them)."""
    found = AlertSettings.objects.filter(owner=owner).first()
    return found if found is not None else AlertSettings(owner=owner, events=all_events())


def save_settings(*, owner, email_enabled: bool, email: str, webhook_enabled: bool, webhook_url: str,
                  events) -> AlertSettings:
    """Store the user's channels and events. The webhook URL is checked by the egress guard now (and again at every
    message): https, a public address."""
    webhook_url = (webhook_url or "").strip()
    if webhook_url:
        try:
            webhook_url = egress.check_url(webhook_url)
        except egress.EgressRefused as exc:
            raise AlertSettingsError(exc.message, field="webhook_url") from None
    elif webhook_enabled:
        raise AlertSettingsError("Give the webhook's address, or turn the webhook off.", field="webhook_url")
    if email_enabled and not ((email or "").strip() or getattr(owner, "email", "")):
        raise AlertSettingsError("Give an e-mail address (your account has none).", field="email")
    chosen = [event for event in all_events() if event in set(events or [])]
    alert_settings, _ = AlertSettings.objects.update_or_create(owner=owner, defaults={
        "email_enabled": bool(email_enabled), "email": (email or "").strip(), "webhook_enabled": bool(webhook_enabled),
        "webhook_url": webhook_url, "events": chosen,
    })
    logger.info("alert settings of user %s saved (email=%s webhook=%s events=%s)", owner.pk, bool(email_enabled),
                bool(webhook_enabled), len(chosen))
    return alert_settings


def channels_of(alert_settings: AlertSettings) -> list[str]:
    channels = []
    if alert_settings.email_enabled and alert_settings.address():
        channels.append(Delivery.Channel.EMAIL)
    if alert_settings.webhook_enabled and alert_settings.webhook_url:
        channels.append(Delivery.Channel.WEBHOOK)
    return channels


# Incidents --------------------------------------------------------------------------------------------------

def _never_raises(function):
    """An alert must never break what raised it (a sync's end, a connection check)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            with transaction.atomic():  # a failure here leaves the caller's transaction usable
                return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            logger.error("alert %s not raised (%s)", function.__name__, type(exc).__name__)
            return None

    return wrapper


def raise_incident(*, owner_id: int, event: str, key: str, subject: str, body: str, path: str = "") -> Incident | None:
    """Open an incident and queue its messages (after the commit); None when the same one is already open (it just
    counts another occurrence)."""
    now = timezone.now()
    if Incident.objects.filter(owner_id=owner_id, key=key, resolved_at__isnull=True).update(
            occurrences=F("occurrences") + 1, last_seen_at=now):
        return None
    try:
        with transaction.atomic():
            incident = Incident.objects.create(owner_id=owner_id, event=event, key=key, subject=subject[:200],
                                               body=body, path=path)
    except IntegrityError:  # raised concurrently by another worker: that one sends it
        return None
    transaction.on_commit(lambda: _queue(incident.pk))
    logger.info("incident %s raised (%s, user %s)", incident.pk, event, owner_id)
    return incident


def resolve(*, owner_id: int, key: str = "", prefix: str = "") -> int:
    """Close the open incidents with this key (or key prefix): the next failure is a new incident."""
    incidents = Incident.objects.filter(owner_id=owner_id, resolved_at__isnull=True)
    incidents = incidents.filter(key=key) if key else incidents.filter(key__startswith=prefix)
    return incidents.update(resolved_at=timezone.now())


def _queue(incident_id: int) -> None:
    from alerts.tasks import deliver_incident

    try:
        deliver_incident.delay(incident_id)
    except Exception as exc:  # noqa: BLE001 — broker down: the incident is on the alerts page all the same
        logger.error("could not queue the delivery of incident %s (%s)", incident_id, type(exc).__name__)


# Where incidents come from (each called in one line where it happens) ------------------------------------------

def _connection_words(connection) -> str:
    return f"{connection.platform.name} · {connection.label}"


@_never_raises
def connection_broke(connection) -> Incident | None:
    """A connection went to error (a failed check, or the platform refused it during a sync)."""
    return raise_incident(
        owner_id=connection.owner_id, event=Event.CONNECTION_BROKEN, key=f"connection:{connection.pk}:broken",
        subject=f"Connection stopped working: {_connection_words(connection)}",
        body=(f"{connection.platform.name} refused the credentials of “{connection.label}”. Its syncs stop until "
              "you reconnect it (sign in again or enter new credentials). The reason is on the connection's page."),
        path=reverse("connection_detail", args=[connection.pk]),
    )


@_never_raises
def connection_recovered(connection) -> int:
    """The connection works again: its "broke" incident closes (a later break alerts again)."""
    return resolve(owner_id=connection.owner_id, key=f"connection:{connection.pk}:broken")


@_never_raises
def connection_expiring(connection) -> Incident | None:
    """The connection's token is within a warning step (14, 7, 1 days; 0: expired): one incident per step and
    expiry date, so a renewed token that comes close again warns again."""
    step = connection.expiry_warning
    if step is None or connection.expires_at is None:
        return None
    what = connection.expiry_what or "access token"
    days = connection.expires_in_days
    if step == 0:
        when, subject = "has expired", f"Connection expired: {_connection_words(connection)}"
    else:
        when = f"expires in {days} day{'s' if days != 1 else ''} ({connection.expires_at:%Y-%m-%d})"
        subject = f"Connection expires in {days} day{'s' if days != 1 else ''}: {_connection_words(connection)}"
    prefix = f"connection:{connection.pk}:expires:"
    key = f"{prefix}{step}:{connection.expires_at:%Y%m%d}"
    # The earlier step's incident closes: this one replaces it.
    Incident.objects.filter(owner_id=connection.owner_id, key__startswith=prefix, resolved_at__isnull=True).exclude(
        key=key).update(resolved_at=timezone.now())
    return raise_incident(
        owner_id=connection.owner_id, event=Event.CONNECTION_EXPIRING, key=key,
        subject=subject,
        body=(f"The {what} of “{connection.label}” on {connection.platform.name} {when}. Sign in with "
              f"{connection.platform.name} again (or enter a new token) on the connection's page before then, or its "
              "syncs will fail."),
        path=reverse("connection_detail", args=[connection.pk]),
    )


RUN_WORDS = {
    "failed": (Event.RUN_FAILED, "failed",
               "Nothing after the last sent batch was lost: open the run to see why and resume it."),
    "partial": (Event.RUN_PARTIAL, "partly failed",
                "Some batches were refused by the platform; the people in them are sent again by the next run once "
                "the problem is fixed. The run's page lists the batches and the platform's reasons."),
    "held": (Event.RUN_HELD, "is held for review",
             "It would remove more people than the sync's threshold allows. Nothing was sent: confirm or cancel it on "
             "the run's page."),
    "attention": (Event.RUN_ATTENTION, "needs attention",
                  "The platform reports the audience shrank by more than the run explains. Check the audience on the "
                  "platform before the next run; the run's page shows the figures."),
}


@_never_raises
def run_ended(*, run_id: int) -> Incident | None:
    """A sync run ended failed, partly failed, held for review or needing attention (other endings raise nothing)."""
    from syncs.models import SyncRun

    run = SyncRun.objects.select_related("sync__audience", "sync__connection__platform").filter(pk=run_id).first()
    if run is None or run.status not in RUN_WORDS:
        return None
    event, verb, advice = RUN_WORDS[run.status]
    sync = run.sync
    where = f"“{sync.audience.name}” to {_connection_words(sync.connection)}"
    counts = ""
    if run.status == "held":
        counts = f" (it would remove {run.to_remove:,} of {run.held_before or 0:,} people)"
    elif run.status == "partial":
        counts = f" ({run.sent:,} people sent, {run.rejected:,} rejected)"
    return raise_incident(
        owner_id=sync.owner_id, event=event, key=f"run:{run.pk}:{run.status}",
        subject=f"Sync run {verb}: {sync.audience.name} → {_connection_words(sync.connection)}",
        body=f"The sync of {where} {verb}{counts}. {advice}",
        path=reverse("sync_run_detail", args=[run.pk]),
    )


@_never_raises
def schedule_skipped(*, sync, reason: str) -> Incident | None:
    """A scheduled run did not start (``reason`` in our words). One incident until a scheduled run starts again."""
    return raise_incident(
        owner_id=sync.owner_id, event=Event.SCHEDULE_SKIPPED, key=f"sync:{sync.pk}:skipped",
        subject=f"Scheduled sync skipped: {sync.audience.name} → {_connection_words(sync.connection)}",
        body=(f"The scheduled sync of “{sync.audience.name}” to {_connection_words(sync.connection)} did not run: "
              f"{reason} It runs again at its next scheduled time."),
        path=reverse("audience_detail", args=[sync.audience_id]),
    )


@_never_raises
def scheduled_run_started(*, sync) -> int:
    return resolve(owner_id=sync.owner_id, key=f"sync:{sync.pk}:skipped")


# Sending ------------------------------------------------------------------------------------------------------

@dataclass
class Sent:
    channel: str
    ok: bool
    message: str


def message_text(incident: Incident) -> str:
    return (f"{incident.body}\n\nOpen it: {incident.url()}\n\n— Activation Manager. Choose what you receive: "
            f"{settings.SITE_URL}{reverse('alert_settings')}\n")


def send_email(incident: Incident, address: str) -> None:
    send_mail(f"[Activation Manager] {incident.subject}", message_text(incident), settings.DEFAULT_FROM_EMAIL,
              [address], fail_silently=False)


def webhook_payload(incident: Incident) -> dict:
    """Slack's incoming-webhook shape: ``text`` (the fallback every compatible receiver reads) and one section."""
    text = f"*{incident.subject}*\n{incident.body}\n<{incident.url()}|Open in Activation Manager>"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def send_webhook(incident: Incident, url: str) -> None:
    """POST through the egress guard (re-checked now; no redirect followed; the answer's body never read)."""
    with egress.session({"Content-Type": "application/json"}) as session:
        response = session.post(url, json=webhook_payload(incident), timeout=settings.PLATFORM_HTTP_TIMEOUT,
                                stream=True)
        status = response.status_code
        response.close()
    if not 200 <= status < 300:
        raise DeliveryFailed(f"The webhook answered {egress.status_line(status)}.")


class DeliveryFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _send(incident: Incident, channel: str, alert_settings: AlertSettings) -> None:
    if channel == Delivery.Channel.EMAIL:
        send_email(incident, alert_settings.address())
    else:
        send_webhook(incident, alert_settings.webhook_url)


def _failure_text(channel: str, exc: Exception) -> str:
    """Why a message did not go, in our words (no address, no URL, no server text)."""
    if isinstance(exc, DeliveryFailed):
        return exc.message
    if isinstance(exc, egress.EgressRefused):
        return exc.message
    if channel == Delivery.Channel.EMAIL:
        return f"The mail server refused or could not be reached ({type(exc).__name__})."
    return "Could not connect to the webhook."


def deliver(*, incident_id: int) -> list[Delivery]:
    """Send an incident through each of its owner's channels that has not had it yet; returns the deliveries that
    still failed (for the task to retry). A channel that was sent stays sent: a retry never sends it twice."""
    incident = Incident.objects.select_related("owner").filter(pk=incident_id).first()
    if incident is None:
        return []
    alert_settings = settings_for(incident.owner)
    if not alert_settings.wants(incident.event):
        return []
    failed = []
    for channel in channels_of(alert_settings):
        delivery, _ = Delivery.objects.get_or_create(incident=incident, channel=channel)
        if delivery.status == Delivery.Status.SENT:
            continue
        delivery.attempts += 1
        try:
            _send(incident, channel, alert_settings)
        except Exception as exc:  # noqa: BLE001 — recorded in our words, retried by the task
            delivery.status, delivery.error = Delivery.Status.FAILED, _failure_text(channel, exc)[:300]
            failed.append(delivery)
            logger.warning("incident %s: %s delivery failed (%s)", incident.pk, channel, type(exc).__name__)
        else:
            delivery.status, delivery.error, delivery.sent_at = Delivery.Status.SENT, "", timezone.now()
            logger.info("incident %s: sent by %s", incident.pk, channel)
        delivery.save()
    return failed


def send_test(*, owner) -> list[Sent]:
    """A test message through each of the user's channels, now (not queued), with what happened on each."""
    alert_settings = settings_for(owner)
    incident = Incident.objects.create(
        owner=owner, event=Event.TEST, key=f"test:{uuid.uuid4().hex}", resolved_at=timezone.now(),
        subject="Test alert", body="This is a test of your Activation Manager alerts: this channel works.",
        path=reverse("alert_settings"),
    )
    results = []
    for channel in channels_of(alert_settings):
        delivery = Delivery.objects.create(incident=incident, channel=channel, attempts=1)
        try:
            _send(incident, channel, alert_settings)
        except Exception as exc:  # noqa: BLE001
            delivery.status, delivery.error = Delivery.Status.FAILED, _failure_text(channel, exc)[:300]
            results.append(Sent(channel, False, delivery.error))
        else:
            delivery.status, delivery.sent_at = Delivery.Status.SENT, timezone.now()
            results.append(Sent(channel, True, "sent"))
        delivery.save()
    return results
