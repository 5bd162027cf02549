"""How the Data Manager fake says no: the abort a handler raises, the scripted faults tests queue (the ``fail_next``
presets), the record checks Google applies before it takes a request (fast-fail: one bad member fails it all), and
the ``google.rpc.Status`` Google answers with (ErrorInfo, RequestInfo, BadRequest field violations, RetryInfo).
``sandbox/google_datamanager.py`` serves the calls and keeps the state."""

from __future__ import annotations

import re

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "datamanager.googleapis.com"
MAX_IDENTIFIERS = 10
HEX = re.compile(r"[0-9a-fA-F]*")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, reason: str, *, violations=(), metadata=None,
                 retry_delay: float | None = None, domain: str = DOMAIN):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason
        self.violations, self.metadata, self.retry_delay, self.domain = tuple(violations), metadata or {}, \
            retry_delay, domain


# fail_next(kind) presets: (code, message, reason, ErrorInfo metadata, domain)
FAULTS = {
    "quota_per_minute": (grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded for quota metric 'Ingestion mutate "
                         "requests' and limit 'Ingestion mutate requests per minute per project'.",
                         "RATE_LIMIT_EXCEEDED",
                         {"quota_limit": "IngestionMutateRequestsPerMinutePerProject",
                          "quota_limit_value": "300"}, "googleapis.com"),
    "quota_per_day": (grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded for quota metric 'Ingestion mutate "
                      "requests' and limit 'Ingestion mutate requests per day per project'.", "RATE_LIMIT_EXCEEDED",
                      {"quota_limit": "IngestionMutateRequestsPerDayPerProject", "quota_limit_value": "100000"},
                      "googleapis.com"),
    "unavailable": (grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.", "", {}, DOMAIN),
    "internal": (grpc.StatusCode.INTERNAL, "An internal error has occurred.", "INTERNAL_ERROR", {}, DOMAIN),
    "deadline_exceeded": (grpc.StatusCode.DEADLINE_EXCEEDED, "The request took too long to respond.",
                          "DEADLINE_EXCEEDED", {}, DOMAIN),
    "unauthenticated": (grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials. Expected "
                        "OAuth 2 access token, login cookie or other valid authentication credential.",
                        "ACCESS_TOKEN_EXPIRED", {"service": DOMAIN}, "googleapis.com"),
    "permission_denied": (grpc.StatusCode.PERMISSION_DENIED, "The caller does not have permission.",
                          "PERMISSION_DENIED", {}, DOMAIN),
}


def _check_member(index: int, member) -> list[tuple[str, str, str]]:
    path = f"audience_members[{index}]"
    if member.WhichOneof("data") != "user_data":
        return [(path, "This audience member is not valid for a CONTACT_ID list.", "INVALID_AUDIENCE_MEMBER")]
    identifiers = member.user_data.user_identifiers
    if not identifiers:
        return [(f"{path}.user_data.user_identifiers", "No identifiers provided.", "NO_IDENTIFIERS_PROVIDED")]
    if len(identifiers) > MAX_IDENTIFIERS:
        return [(f"{path}.user_data.user_identifiers", "Maximum number of user identifiers allowed per audience "
                 "member is 10.", "TOO_MANY_USER_IDENTIFIERS")]
    problems = []
    for i, identifier in enumerate(identifiers):
        where = f"{path}.user_data.user_identifiers[{i}]"
        which = identifier.WhichOneof("identifier")
        if which in ("email_address", "phone_number"):
            problems.extend(_hash_problem(f"{where}.{which}", getattr(identifier, which)))
        elif which == "address":
            address = identifier.address
            for name in ("given_name", "family_name"):
                problems.extend(_hash_problem(f"{where}.address.{name}", getattr(address, name)))
            if not re.fullmatch(r"[A-Za-z]{2}", address.region_code.strip()):
                problems.append((f"{where}.address.region_code", "Region code is not valid.", "INVALID_REGION_CODE"))
            if not address.postal_code.strip() or SHA256_HEX.fullmatch(address.postal_code.lower()):
                problems.append((f"{where}.address.postal_code", "Postal code is not valid.", "INVALID_POSTAL_CODE"))
        else:
            problems.append((where, "Required field is missing.", "REQUIRED_FIELD_MISSING"))
    return problems


def _hash_problem(field: str, value: str) -> list[tuple[str, str, str]]:
    if not value:
        return [(field, "Required field is missing.", "REQUIRED_FIELD_MISSING")]
    if not HEX.fullmatch(value) or len(value) % 2:
        return [(field, "The HEX encoded value is malformed.", "INVALID_HEX_ENCODING")]
    if len(value) != 64:
        return [(field, "The SHA256 encoded value is malformed.", "INVALID_SHA256_FORMAT")]
    return []


def _status(abort: _Abort, request_id: str) -> status_pb2.Status:
    details = []
    info = error_details_pb2.ErrorInfo(reason=abort.reason or abort.code.name, domain=abort.domain)
    info.metadata.update(abort.metadata)
    details.append(info)
    details.append(error_details_pb2.RequestInfo(request_id=request_id))
    if abort.violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d, reason=r)
            for f, d, r in abort.violations]))
    if abort.retry_delay:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.seconds = int(abort.retry_delay)
        details.append(retry)
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=getattr(code_pb2, abort.code.name), message=abort.message, details=packed)
