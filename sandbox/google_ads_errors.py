"""How the Google Ads fake says no: the scripted faults tests queue (``GrpcFault``, the ``fail_next`` presets), the
abort a handler raises, and Google's errors built as Google builds them (``GoogleAdsError`` with its code, location
and quota retry delay). ``sandbox/google_ads.py`` serves the calls and turns an abort into a gRPC status with a
``GoogleAdsFailure`` trailer."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.ads.googleads.v26.errors.types import errors as errors_types
from google.protobuf import duration_pb2


@dataclass
class GrpcFault:
    """A scripted failure for the next ``times`` calls of ``method`` (any method when None).

    ``errors`` are (ErrorCode field, enum name, message) triples sent as a GoogleAdsFailure; none means a bare
    gRPC status (as Google's front end sends UNAVAILABLE / DEADLINE_EXCEEDED).
    """

    code: grpc.StatusCode
    errors: tuple[tuple[str, str, str], ...] = ()
    method: str | None = None
    times: int = 1
    retry_delay: float | None = None
    message: str = ""


# fail_next(kind) presets: the errors Google answers for throttling, auth and server trouble.
FAULTS = {
    "resource_exhausted": (grpc.StatusCode.RESOURCE_EXHAUSTED, ("quota_error", "RESOURCE_EXHAUSTED",
                           "Too many requests. Retry in 30 seconds.")),
    "quota_temporarily_exhausted": (grpc.StatusCode.RESOURCE_EXHAUSTED, ("quota_error",
                                    "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests. Retry in 30 seconds.")),
    "unavailable": (grpc.StatusCode.UNAVAILABLE, None),
    "deadline_exceeded": (grpc.StatusCode.DEADLINE_EXCEEDED, None),
    "internal": (grpc.StatusCode.INTERNAL, ("internal_error", "INTERNAL_ERROR",
                 "An internal error has occurred.")),
    "authentication": (grpc.StatusCode.UNAUTHENTICATED, ("authentication_error", "OAUTH_TOKEN_EXPIRED",
                       "The OAuth access token has expired.")),
    "authorization": (grpc.StatusCode.PERMISSION_DENIED, ("authorization_error", "USER_PERMISSION_DENIED",
                      "User doesn't have permission to access customer. Note: If you're accessing a client "
                      "customer, the manager's customer id must be set in the 'login-customer-id' header.")),
    "concurrent_modification": (grpc.StatusCode.ABORTED, ("database_error", "CONCURRENT_MODIFICATION",
                                "Multiple requests were attempting to modify the same resource at once.")),
}


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, errors=(), retry_delay: float | None = None, message: str = ""):
        super().__init__(message)
        self.code, self.errors, self.retry_delay, self.message = code, tuple(errors), retry_delay, message


def _error(field: str, name: str, message: str, *, index: int | None = None, retry_delay: float | None = None):
    location = None
    if index is not None:
        location = errors_types.ErrorLocation(
            field_path_elements=[errors_types.ErrorLocation.FieldPathElement(field_name="operations", index=index)]
        )
    details = None
    if retry_delay is not None:
        details = errors_types.ErrorDetails(
            quota_error_details=errors_types.QuotaErrorDetails(
                rate_scope="ACCOUNT", rate_name="Requests per developer token per day",
                retry_delay=duration_pb2.Duration(seconds=int(retry_delay)),
            )
        )
    return errors_types.GoogleAdsError(
        error_code=errors_types.ErrorCode(**{field: name}), message=message, location=location, details=details
    )
