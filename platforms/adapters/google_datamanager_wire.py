"""The Data Manager adapter's wire side: building the request members (raw protobuf: 10,000 members build in
milliseconds) and reading Google's answers (error details, retry delays, request diagnostics). The adapter,
``platforms/adapters/google_datamanager.py``, sends and translates; the limits quoted there apply here."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from google.ads.datamanager_v1.types import audience as audience_types
from google.ads.datamanager_v1.types import request_status_per_destination as rspd
from google.ads.datamanager_v1.types import user_data as user_data_types
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.rpc import error_details_pb2

from platforms.adapters.base import PreparedMember

MAX_IDENTIFIERS_PER_MEMBER = 10
DEFAULT_RETRY_AFTER = 60.0
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
REGION_CODE = re.compile(r"[A-Z]{2}")
PACIFIC = ZoneInfo("America/Los_Angeles")


# What Google said about one request, later -----------------------------------------------------------------
@dataclass(frozen=True)
class DestinationDiagnostics:
    """One destination's processing of one request, as ``RetrieveRequestStatus`` reports it."""

    destination: str  # the list's product_destination_id
    status: str  # SUCCESS, PROCESSING, FAILED, PARTIAL_SUCCESS, REQUEST_STATUS_UNKNOWN
    kind: str  # "ingest" or "remove"
    records: int | None = None
    identifiers: int | None = None
    match_rate_range: str = ""  # e.g. MATCH_RATE_RANGE_61_TO_70 (ingest only)
    errors: dict[str, int] = field(default_factory=dict)  # reason -> records
    warnings: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("SUCCESS", "FAILED", "PARTIAL_SUCCESS")

    @property
    def rejected(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class RequestDiagnostics:
    request_id: str
    destinations: tuple[DestinationDiagnostics, ...]

    @property
    def done(self) -> bool:
        return all(d.done for d in self.destinations)

    @property
    def rejected(self) -> int:
        return sum(d.rejected for d in self.destinations)

    def messages(self) -> tuple[str, ...]:
        """One line per destination, safe to show: counts and Google's reasons, never values."""
        lines = []
        for d in self.destinations:
            parts = [f"Google {d.kind} request {self.request_id}, list {d.destination}: {d.status.lower()}"]
            if d.records is not None:
                parts.append(f"{d.records} record(s), {d.identifiers or 0} identifier(s)")
            if d.match_rate_range:
                parts.append(f"match rate {_match_range_text(d.match_rate_range)}")
            if d.errors:
                parts.append("rejected: " + "; ".join(f"{_reason_text(r)} ×{n}" for r, n in sorted(d.errors.items())))
            if d.warnings:
                parts.append("warnings: " + "; ".join(f"{_reason_text(r)} ×{n}" for r, n in
                                                      sorted(d.warnings.items())))
            lines.append(", ".join(parts))
        return tuple(lines)


def _reason_text(reason: str) -> str:
    return reason.removeprefix("PROCESSING_ERROR_REASON_").removeprefix("PROCESSING_WARNING_REASON_") \
        .removeprefix("PROCESSING_ERROR_")


def _match_range_text(value: str) -> str:
    text = value.removeprefix("MATCH_RATE_RANGE_")
    return {"LESS_THAN_20": "under 20 %", "NOT_ELIGIBLE": "not eligible", "UNKNOWN": "unknown"}.get(
        text, text.replace("_TO_", "–") + " %")


# Building requests (raw protobuf: 10,000 members build in milliseconds) ---------------------------------------
_PB_MEMBER = audience_types.AudienceMember.pb()
_PB_USER_DATA = user_data_types.UserData.pb()
_PB_IDENTIFIER = user_data_types.UserIdentifier.pb()
_PB_ADDRESS = user_data_types.AddressInfo.pb()

NO_IDENTIFIER = "no identifier Google takes (an email, a phone, or first and last name with country and postal code)"
BAD_HASH = "an identifier is not a lowercase hex SHA-256 (checked before sending: Google would refuse the request)"


def member_identifiers(member: PreparedMember) -> tuple[list, str]:
    """(identifiers, problem): one member's UserIdentifiers, or a reason why it has none Google would accept."""
    identifiers = []
    email, phone = member.get("email"), member.get("phone")
    for value, field_name in ((email, "email_address"), (phone, "phone_number")):
        if value:
            if SHA256_HEX.fullmatch(value) is None:
                return [], BAD_HASH
            identifiers.append(_PB_IDENTIFIER(**{field_name: value}))
    first, last = member.get("first_name"), member.get("last_name")
    country, postal = member.get("country"), member.get("postal_code")
    if first and last and country and postal:  # Google matches an address only with all four
        if SHA256_HEX.fullmatch(first) is None or SHA256_HEX.fullmatch(last) is None:
            return [], BAD_HASH
        if REGION_CODE.fullmatch(country):
            identifiers.append(_PB_IDENTIFIER(address=_PB_ADDRESS(
                given_name=first, family_name=last, region_code=country, postal_code=postal)))
    if not identifiers:
        return [], NO_IDENTIFIER
    return identifiers[:MAX_IDENTIFIERS_PER_MEMBER], ""


def _removal_identifiers(member: PreparedMember) -> PreparedMember:
    if member.get("email") or member.get("phone"):
        return {k: v for k, v in member.items() if k in ("email", "phone")}
    return member


def build_members(batch: Sequence[PreparedMember]) -> tuple[list, list[str]]:
    """(AudienceMembers, one problem string per member left out)."""
    members, problems = [], []
    for member in batch:
        identifiers, problem = member_identifiers(member)
        if problem:
            problems.append(problem)
            continue
        members.append(_PB_MEMBER(user_data=_PB_USER_DATA(user_identifiers=identifiers)))
    return members, problems


def _rejection_messages(rejected: Counter) -> tuple[str, ...]:
    if not rejected:
        return ()
    total = sum(rejected.values())
    return (f"{total} member(s) not sent to Google: "
            + "; ".join(f"{reason} ×{count}" for reason, count in sorted(rejected.items())),)


# Reading Google's answers -----------------------------------------------------------------------------------
def _details(exc: api_exceptions.GoogleAPICallError):
    """(ErrorInfo, request id, BadRequest field violations) from a call error's status details."""
    info = request_id = None
    violations: list = []
    for detail in exc.details or ():
        if isinstance(detail, error_details_pb2.ErrorInfo) and info is None:
            info = detail
        elif isinstance(detail, error_details_pb2.RequestInfo):
            request_id = detail.request_id
        elif isinstance(detail, error_details_pb2.BadRequest):
            violations.extend(detail.field_violations)
    return info, request_id, violations


def _retry_after(exc: api_exceptions.GoogleAPICallError, quota: str) -> float:
    for detail in exc.details or ():
        if isinstance(detail, error_details_pb2.RetryInfo) and detail.HasField("retry_delay"):
            seconds = detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9
            if seconds > 0:
                return seconds
    if quota.endswith("PerDayPerProject"):
        return seconds_until_pacific_midnight()
    return DEFAULT_RETRY_AFTER


def seconds_until_pacific_midnight(now: dt.datetime | None = None) -> float:
    """Seconds until Google Cloud's daily quotas reset (midnight Pacific time)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(PACIFIC)
    tomorrow = (now + dt.timedelta(days=1)).date()
    midnight = dt.datetime.combine(tomorrow, dt.time(0), tzinfo=PACIFIC)
    return max(60.0, (midnight - now).total_seconds())


def _destination_diagnostics(status) -> DestinationDiagnostics:
    which = rspd.RequestStatusPerDestination.pb(status).WhichOneof("status")
    kind = "remove" if which == "audience_members_removal_status" else "ingest"
    records = identifiers = None
    match_range = ""
    if which == "audience_members_ingestion_status":
        user = status.audience_members_ingestion_status.user_data_ingestion_status
        records, identifiers = user.record_count, user.user_identifier_count
        match_range = user.upload_match_rate_range.name
    elif which == "audience_members_removal_status":
        user = status.audience_members_removal_status.user_data_removal_status
        records, identifiers = user.record_count, user.user_identifier_count
    return DestinationDiagnostics(
        destination=status.destination.product_destination_id,
        status=status.request_status.name,
        kind=kind,
        records=records,
        identifiers=identifiers,
        match_rate_range="" if match_range == "MATCH_RATE_RANGE_UNKNOWN" else match_range,
        errors={c.reason.name: c.record_count for c in status.error_info.error_counts},
        warnings={c.reason.name: c.record_count for c in status.warning_info.warning_counts},
    )


def _refresh_message(exc: auth_exceptions.RefreshError, method: str) -> str:
    """Google's OAuth error (e.g. invalid_grant), never the request that carried the secrets."""
    reason = ""
    if len(exc.args) > 1 and isinstance(exc.args[1], dict):
        body = exc.args[1]
        reason = ": ".join(str(part) for part in (body.get("error"), body.get("error_description")) if part)
    reason = reason or (str(exc.args[0]) if exc.args else "refresh failed")
    what = ("the service-account key (create a new key and paste it again)" if method == "service_account"
            else "the OAuth refresh token (generate a new refresh token with the datamanager scope)")
    return f"Google refused {what}: {reason}. Update the connection."
