"""Connections: connect, update, test, disconnect, delete, revalidate, rotate keys.

Every write to a connection goes through here. Rules that hold throughout:

* Saving always tests first: a connection is stored (or its credentials changed) only after the
  platform's adapter accepted them (``validate_credentials``).
* Secrets never leave: messages shown to users, stored in ``last_error`` or in events, and log
  lines carry ids, platform codes and the platform's own words — never a credential. Every
  message that came from outside is also scrubbed of the connection's secret values, in case a
  platform echoes one back.
* Disconnecting erases the stored secrets (least privilege: a disconnected account should not keep
  a working token at rest). Reconnecting means entering them again.
* Tokens that lapse: after a working check the connection asks its platform when its credentials expire
  (``token_expiry``: Meta's debug_token, LinkedIn's introspection, the lifetimes of a sign-in), first renews what
  can be renewed without the person (``renew_credentials``: a LinkedIn refresh token, Meta's long-lived token
  exchange) and records it, and warns 14, 7 and 1 days ahead (an event and an alert per step). A platform that does
  not answer about lifetimes never changes a connection's status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from alerts import services as alerts
from credentials.fields import credentials_cipher
from credentials.forms import required_secrets, secret_labels
from credentials.models import Connection, ConnectionEvent
from credentials.scrub import scrub
from platforms.adapters.base import TokenExpiry, ValidationResult
from platforms.errors import AuthError, PlatformError, RateLimited, TransientError
from platforms.models import Platform

logger = logging.getLogger(__name__)

Kind = ConnectionEvent.Kind
Status = Connection.Status


class CredentialsRejected(Exception):
    """The credentials cannot be saved. ``message`` is safe to show; ``field`` is None for the form as a whole."""

    field: str | None = None

    def __init__(
        self, message: str, *, error: PlatformError | None = None, field: str | None = None, passing: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.error = error
        # True when the failure says nothing about the credentials (platform unreachable or
        # throttling, our adapter unavailable): a stored connection keeps its status.
        self.passing = passing or isinstance(error, (TransientError, RateLimited))
        if field is not None:
            self.field = field


class DuplicateLabel(CredentialsRejected):
    field = "label"


class MissingSecrets(CredentialsRejected):
    def __init__(self, names: list[str], labels: Mapping[str, str]):
        self.names = names
        super().__init__(
            "Enter " + ", ".join(labels.get(n, n).lower() for n in names) + ": nothing is stored for "
            + ("it" if len(names) == 1 else "them") + " (a disconnected connection keeps no secrets)."
        )


@dataclass
class CheckOutcome:
    """What testing a stored connection found."""

    connection_id: int
    result: str  # "ok" | "failed" | "unreachable" | "skipped" | "stale" | "missing"
    message: str = ""
    status: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass
class RotationReport:
    rotated: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0
    failed: list[int] = field(default_factory=list)


# Helpers ----------------------------------------------------------------------------------

def _record(connection: Connection, kind: str, message: str, *, actor=None) -> ConnectionEvent:
    return ConnectionEvent.objects.create(
        owner_id=connection.owner_id,
        connection=connection,
        connection_label=f"{connection.platform.name} — {connection.label}",
        kind=kind,
        message=scrub(message, connection.secrets),
        actor=actor,
    )


def _validate(platform: Platform, credentials: Mapping[str, object], *, storing: bool) -> ValidationResult:
    """Ask the platform whether these credentials work; CredentialsRejected (safe message) if not."""
    name = platform.name
    nothing_stored = " Nothing was stored; try again." if storing else ""
    try:
        from platforms.adapters import get_adapter_class

        adapter = get_adapter_class(platform.code)(credentials)
    except Exception as exc:  # noqa: BLE001 — an adapter that is missing or broken must not become a 500
        logger.error("no usable adapter for platform=%s (%s)", platform.code, type(exc).__name__)
        raise CredentialsRejected(
            f"{name} connections cannot be checked right now (its adapter is unavailable).{nothing_stored}",
            passing=True,
        ) from None
    try:
        return adapter.validate_credentials()
    except RateLimited as exc:
        message = f"{name} is throttling requests: {exc.message}{nothing_stored}"
        raise CredentialsRejected(scrub(message, credentials), error=exc) from None
    except TransientError as exc:
        message = f"Could not reach {name}: {exc.message}{nothing_stored}"
        raise CredentialsRejected(scrub(message, credentials), error=exc) from None
    except PlatformError as exc:  # AuthError, PermanentError: the platform's own reason
        raise CredentialsRejected(scrub(exc.message, credentials), error=exc) from None
    except Exception as exc:  # noqa: BLE001 — the exception text may carry a URL with a token: never shown
        logger.error("validate_credentials failed unexpectedly for platform=%s (%s)", platform.code, type(exc).__name__)
        raise CredentialsRejected(
            f"{name} answered in a way we could not understand.{nothing_stored}", passing=True
        ) from None


def _lifetime(platform: Platform, credentials: Mapping[str, object], fallback: TokenExpiry | None = None):
    """When these credentials expire, as the platform reports it (``fallback``, e.g. a sign-in's token lifetime,
    when it reports nothing); ``UNKNOWN`` when it could not be asked (the stored expiry is then left as it is)."""
    try:
        from platforms.adapters import get_adapter_class

        with get_adapter_class(platform.code)(credentials) as adapter:
            expiry = adapter.token_expiry()
    except PlatformError as exc:
        logger.info("no token lifetime from platform=%s (%s)", platform.code, type(exc).__name__)
        return fallback or UNKNOWN
    except Exception as exc:  # noqa: BLE001 — the expiry is a courtesy: never a 500, never a failed check
        logger.error("token lifetime check failed unexpectedly for platform=%s (%s)", platform.code,
                     type(exc).__name__)
        return fallback or UNKNOWN
    return expiry if expiry is not None else fallback


UNKNOWN = object()


def expiry_fields(expiry, now) -> dict:
    """The connection's expiry columns for what ``_lifetime`` found ({} when unknown: keep what is stored)."""
    if expiry is UNKNOWN:
        return {}
    return {
        "expires_at": expiry.expires_at if expiry else None,
        "expiry_what": expiry.what if expiry else "",
        "expiry_renewable": bool(expiry and expiry.renewable),
        "expiry_checked_at": now,
    }


def _check_required(platform: Platform, secrets: Mapping[str, object]) -> None:
    try:
        required = required_secrets(platform.code)
    except LookupError:  # the platform's adapter is not loaded (see the registry): nothing can be checked
        logger.error("no usable adapter for platform=%s", platform.code)
        raise CredentialsRejected(f"{platform.name} connections cannot be checked right now (its adapter is "
                                  "unavailable). Nothing was stored; try again.", passing=True) from None
    missing = [name for name in required if not secrets.get(name)]
    if missing:
        raise MissingSecrets(missing, secret_labels(platform.code))


def _label_taken(*, owner, platform: Platform, label: str, exclude_pk: int | None = None) -> bool:
    qs = Connection.objects.filter(owner=owner, platform=platform, label=label)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def _duplicate(platform: Platform, label: str) -> DuplicateLabel:
    return DuplicateLabel(f"You already have a {platform.name} connection called “{label}”; choose another label.")


# Connect / update ---------------------------------------------------------------------------

def connect(
    *, owner, platform: Platform, label: str, config: Mapping[str, object], secrets: Mapping[str, object], actor=None,
    auth_method: str = Connection.AuthMethod.TOKEN, expiry: TokenExpiry | None = None,
) -> Connection:
    """Test the credentials through the platform's adapter; store the connection (encrypted) only if they work,
    with when they expire (as the platform reports it; ``expiry``, a sign-in's token lifetime, when it does not).

    Raises CredentialsRejected (DuplicateLabel, MissingSecrets, or the platform's reason); nothing is
    stored then.
    """
    label = label.strip()
    secrets = {name: value for name, value in secrets.items() if value}
    if _label_taken(owner=owner, platform=platform, label=label):
        raise _duplicate(platform, label)
    _check_required(platform, secrets)
    result = _validate(platform, {**config, **secrets}, storing=True)
    now = timezone.now()
    lifetime = expiry_fields(_lifetime(platform, {**config, **secrets}, fallback=expiry), now)
    how = " (signed in with the platform)" if auth_method == Connection.AuthMethod.OAUTH else ""
    try:
        with transaction.atomic():
            connection = Connection.objects.create(
                owner=owner, platform=platform, label=label, config=dict(config), secrets=secrets,
                status=Status.ACTIVE, last_validated_at=now, last_error="", auth_method=auth_method, **lifetime,
            )
            _record(connection, Kind.CONNECTED, f"Connected to {result.account_name}{how}.{_expiry_note(connection)}",
                    actor=actor or owner)
    except IntegrityError:  # a concurrent connect with the same label won the race
        raise _duplicate(platform, label) from None
    logger.info("connection %s connected (platform=%s owner=%s)", connection.pk, platform.code, owner.pk)
    return connection


def update_connection(
    *, connection: Connection, label: str, config: Mapping[str, object], secrets: Mapping[str, object], actor=None,
    auth_method: str | None = None, expiry: TokenExpiry | None = None,
) -> Connection:
    """Edit or reconnect: blank secrets keep their stored value; the result is tested before it is saved (and its
    expiry read again: new secrets, new lifetime)."""
    platform = connection.platform
    label = label.strip()
    new_secrets = {name: value for name, value in secrets.items() if value}
    merged = {**(connection.secrets or {}), **new_secrets}
    if _label_taken(owner=connection.owner, platform=platform, label=label, exclude_pk=connection.pk):
        raise _duplicate(platform, label)
    _check_required(platform, merged)
    result = _validate(platform, {**config, **merged}, storing=True)

    labels = secret_labels(platform.code)
    stored = connection.secrets or {}
    changed = [labels.get(name, name).lower() for name in sorted(new_secrets) if new_secrets[name] != stored.get(name)]
    changed += [name.replace("_", " ") for name in sorted(config) if config[name] != connection.config.get(name)]
    if label != connection.label:
        changed.append("label")
    was = connection.status
    now = timezone.now()
    connection.label = label
    connection.config = dict(config)
    connection.secrets = merged
    connection.status = Status.ACTIVE
    connection.last_validated_at = now
    connection.last_error = ""
    if auth_method:
        connection.auth_method = auth_method
    for name, value in expiry_fields(_lifetime(platform, {**config, **merged}, fallback=expiry), now).items():
        setattr(connection, name, value)
    kind = Kind.RECONNECTED if was in (Status.ERROR, Status.DISCONNECTED) else Kind.UPDATED
    verb = "Reconnected to" if kind == Kind.RECONNECTED else "Updated; working with"
    detail = f" Changed: {', '.join(changed)}." if changed else ""
    try:
        with transaction.atomic():
            connection.save()
            _record(connection, kind, f"{verb} {result.account_name}.{detail}{_expiry_note(connection)}", actor=actor)
            alerts.connection_recovered(connection)
    except IntegrityError:
        raise _duplicate(platform, label) from None
    logger.info("connection %s %s (platform=%s)", connection.pk, kind, platform.code)
    return connection


# Test / revalidate ------------------------------------------------------------------------------

def _check_stored(connection: Connection, *, actor, ok_kind: str, failed_kind: str) -> CheckOutcome:
    """Validate a stored connection and record what happened.

    A TransientError / RateLimited answer leaves the status alone: the platform being down for a
    moment says nothing about the credentials, and flipping every connection to "error" during an
    outage would send every marketer to re-enter working tokens. The text goes to last_error so the
    card shows the check did not happen.
    """
    snapshot = connection.updated_at
    now = timezone.now()
    was = connection.status
    try:
        result = _validate(connection.platform, connection.credentials, storing=False)
    except CredentialsRejected as exc:
        message = exc.message
        if exc.passing:
            outcome, status = "unreachable", was
            message = f"Not checked at {now:%Y-%m-%d %H:%M} UTC: {message}"
        else:
            outcome, status = "failed", Status.ERROR
        if not _apply(connection, snapshot, now, status=status, last_error=message):
            return CheckOutcome(connection.pk, "stale", "The connection changed while it was being checked.")
        if outcome == "failed" or failed_kind == Kind.TEST_FAILED:
            _record(connection, failed_kind, message, actor=actor)
        if outcome == "failed":
            alerts.connection_broke(connection)
        logger.warning("connection %s check %s (platform=%s)", connection.pk, outcome, connection.platform.code)
        return CheckOutcome(connection.pk, outcome, message, status)

    if not _apply(connection, snapshot, now, status=Status.ACTIVE, last_error="", last_validated_at=now):
        return CheckOutcome(connection.pk, "stale", "The connection changed while it was being checked.")
    recovered = was == Status.ERROR
    kind = Kind.RECONNECTED if recovered and ok_kind == Kind.REVALIDATED_OK else ok_kind
    message = f"Working: reached {result.account_name}." + (" Back to active." if recovered else "")
    _record(connection, kind, message, actor=actor)
    alerts.connection_recovered(connection)
    logger.info("connection %s check ok (platform=%s)", connection.pk, connection.platform.code)
    _renew_and_measure(connection, actor=actor)
    return CheckOutcome(connection.pk, "ok", message + _expiry_note(connection), Status.ACTIVE)


def _renew_and_measure(connection: Connection, *, actor=None) -> None:
    """After a working check: renew what the platform lets us renew (recorded), then read when the credentials
    expire, and warn when that is within a warning step. Nothing here changes the connection's status."""
    from platforms.adapters import get_adapter_class

    try:
        with get_adapter_class(connection.platform.code)(connection.credentials) as adapter:
            renewal = adapter.renew_credentials()
    except AuthError as exc:
        # The grant behind the token was refused (a revoked refresh token): the token works until it expires.
        _record(connection, Kind.REFRESH_FAILED, f"{exc.message} The current token keeps working until it expires.",
                actor=actor)
        renewal = None
    except Exception as exc:  # noqa: BLE001 — unreachable, throttled or broken: try again at the next check
        logger.info("connection %s: no renewal (%s)", connection.pk, type(exc).__name__)
        renewal = None
    now = timezone.now()
    fields = {}
    if renewal is not None and renewal.secrets:
        fields["secrets"] = {**(connection.secrets or {}), **renewal.secrets}
    credentials = {**connection.config, **fields.get("secrets", connection.secrets or {})}
    fields.update(expiry_fields(_lifetime(connection.platform, credentials, fallback=renewal and renewal.expiry), now))
    if not fields:
        return
    if not _apply(connection, connection.updated_at, now, **fields):
        logger.info("connection %s changed while its token was renewed; the next check tries again", connection.pk)
        return
    if "secrets" in fields:
        _record(connection, Kind.REFRESHED, renewal.message + _expiry_note(connection), actor=actor)
    if alerts.connection_expiring(connection) is not None:
        _record(connection, Kind.EXPIRING, _expiry_note(connection).strip(), actor=actor)


def _expiry_note(connection: Connection) -> str:
    """" The access token expires in 12 days (2026-12-13)." or "" without an expiry."""
    if connection.expires_at is None:
        return ""
    what = (connection.expiry_what or "access token").capitalize()
    if connection.expires_at <= timezone.now():
        return f" {what} expired on {connection.expires_at:%Y-%m-%d}."
    days = connection.expires_in_days
    renewed = " (renewed automatically)" if connection.expiry_renewable else ""
    return f" {what} expires in {days} day{'s' if days != 1 else ''} ({connection.expires_at:%Y-%m-%d}){renewed}."


def _apply(connection: Connection, snapshot, now, **fields) -> bool:
    """Write check results only if nobody edited the connection meanwhile (its credentials may differ)."""
    updated = Connection.objects.filter(pk=connection.pk, updated_at=snapshot).update(updated_at=now, **fields)
    if updated:
        for name, value in fields.items():
            setattr(connection, name, value)
        connection.updated_at = now
    return bool(updated)


def test_connection(*, connection: Connection, actor=None) -> CheckOutcome:
    """"Test now": validate the stored credentials; failures set status error (transient ones do not)."""
    if connection.status == Status.DISCONNECTED:
        return CheckOutcome(connection.pk, "skipped", "This connection is disconnected: reconnect it first.",
                            connection.status)
    return _check_stored(connection, actor=actor, ok_kind=Kind.TEST_OK, failed_kind=Kind.TEST_FAILED)


test_connection.__test__ = False  # not a pytest test, despite the name


def revalidate_connection(*, connection_id: int) -> CheckOutcome:
    """The daily check of one connection (active or error; disconnected ones are skipped)."""
    connection = Connection.objects.select_related("platform").filter(pk=connection_id).first()
    if connection is None:
        return CheckOutcome(connection_id, "missing", "The connection no longer exists.")
    if connection.status not in (Status.ACTIVE, Status.ERROR):
        return CheckOutcome(connection_id, "skipped", f"Status is {connection.status}.", connection.status)
    return _check_stored(connection, actor=None, ok_kind=Kind.REVALIDATED_OK, failed_kind=Kind.REVALIDATION_FAILED)


def revalidate_all() -> list[CheckOutcome]:
    """Check every active and error connection, one after the other (the command; beat fans out instead)."""
    from credentials.selectors import connection_ids_to_revalidate

    return [revalidate_connection(connection_id=pk) for pk in connection_ids_to_revalidate()]


# Disconnect / delete ---------------------------------------------------------------------------

def disconnect_connection(*, connection: Connection, actor=None) -> Connection:
    """Status disconnected (beat skips it) and the stored secrets erased. Idempotent."""
    if connection.status == Status.DISCONNECTED and not connection.secrets:
        return connection
    with transaction.atomic():
        connection.status = Status.DISCONNECTED
        connection.secrets = {}
        connection.last_error = ""
        connection.save()
        _record(connection, Kind.DISCONNECTED, "Disconnected; the stored secrets were erased.", actor=actor)
    logger.info("connection %s disconnected (platform=%s)", connection.pk, connection.platform.code)
    return connection


def delete_connection(*, connection: Connection, actor=None) -> None:
    """Delete the connection and its syncs; the audit trail keeps its events."""
    syncs = connection.syncs.count()
    with transaction.atomic():
        detail = f" Its {syncs} sync{'s' if syncs != 1 else ''} were deleted with it." if syncs else ""
        _record(connection, Kind.DELETED, f"Deleted.{detail}", actor=actor)
        pk = connection.pk
        connection.delete()
    logger.info("connection %s deleted", pk)


# Key rotation -------------------------------------------------------------------------------------

def rotate_keys(*, batch_size: int = 200) -> RotationReport:
    """Re-encrypt every connection's secrets under the first key of CREDENTIALS_KEYS.

    Works on the raw ciphertext (MultiFernet.rotate), so plaintext never passes through the ORM.
    A token already under the newest key is left alone, so running it twice is a no-op. A row
    written meanwhile is not overwritten (the UPDATE matches the old ciphertext): any write already
    encrypts under the newest key.
    """
    cipher = credentials_cipher()
    newest = Fernet(settings.CREDENTIALS_KEYS[0].encode())
    quote = db_connection.ops.quote_name
    table = quote(Connection._meta.db_table)
    column = quote(Connection._meta.get_field("secrets").column)
    report = RotationReport()
    last_id = 0
    while True:
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, owner_id, label, {column} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                [last_id, batch_size],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        events = []
        # Platform names for the audit label (values() reads no secrets, so nothing is decrypted).
        names = dict(Connection.objects.filter(pk__in=[r[0] for r in rows]).values_list("pk", "platform__name"))
        with transaction.atomic():
            for pk, owner_id, label, raw in rows:
                last_id = pk
                if raw is None:
                    continue
                token = bytes(raw)
                try:
                    newest.decrypt(token)
                    report.already_current += 1
                    continue
                except InvalidToken:
                    pass
                try:
                    rotated = cipher.rotate(token)
                except InvalidToken:
                    logger.error("connection %s: no configured key decrypts its secrets", pk)
                    report.failed.append(pk)
                    continue
                with db_connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE id = %s AND {column} = %s",  # noqa: S608
                        [rotated, pk, token],
                    )
                    changed = cursor.rowcount
                if changed == 1:
                    report.rotated += 1
                    events.append(ConnectionEvent(
                        owner_id=owner_id, connection_id=pk, connection_label=f"{names.get(pk, '')} — {label}",
                        kind=Kind.KEY_ROTATED,
                        message="Secrets re-encrypted under the newest key.",
                    ))
                else:
                    report.changed_meanwhile += 1
            ConnectionEvent.objects.bulk_create(events)
    logger.info("key rotation: %s rotated, %s already current, %s changed meanwhile, %s failed",
                report.rotated, report.already_current, report.changed_meanwhile, len(report.failed))
    return report


# Sync engine -------------------------------------------------------------------------------------

def mark_auth_failed_during_sync(*, connection_id: int, message: str) -> Connection | None:
    """A sync met an AuthError: the connection goes to error with the platform's (scrubbed) message,
    so the marketer sees "reconnect" on the Platforms page and the dashboard."""
    connection = Connection.objects.select_related("platform").filter(pk=connection_id).first()
    if connection is None:
        return None
    text = scrub(message, connection.secrets)
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(
            status=Status.ERROR, last_error=text, updated_at=timezone.now()
        )
        connection.status, connection.last_error = Status.ERROR, text
        _record(connection, Kind.AUTH_FAILED, text)
        alerts.connection_broke(connection)
    logger.warning("connection %s set to error by a sync (platform=%s)", connection.pk, connection.platform.code)
    return connection
