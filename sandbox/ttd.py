"""A fake of The Trade Desk's REST API v3 for first-party CRM data segments, and of its drop storage.

Mounted under ``/ttd``: the API answers ``/v3/...`` (so ``PLATFORM_ENDPOINTS["ttd"]`` is
``<server>/ttd/v3``) and the pre-signed drop URLs it hands out point at ``/ttd/drop/<ReferenceId>`` on the
same server (TTD's real URLs point at its storage; the adapter must treat them as foreign: no TTD-Auth).

Wire format as TTD speaks it: JSON bodies with PascalCase fields; errors ``{"Message": ..., "ErrorDetails":
[{"Property", "Reasons": [...]}]}``; 401 for a missing / unknown / expired token (``EXPIRED_TOKEN``),
403 for an advertiser the token may not manage, 404 for unknown segments, 400 for invalid bodies (including
the ``RetentionEnabled`` property TTD removed in 2024). Drops are ``PUT`` as ``text/plain``, one value per
line; the storage answers S3-style XML errors.

State: advertisers, segments, members per segment (``(PiiType, value)`` pairs), drops. Helpers for tests:
``audience_members(crm_data_id)``, ``audience_values(crm_data_id, pii_type)``, ``drops`` (every drop
request with its mode, type and line counts), ``add_requests``, ``error_response(...)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re

from sandbox.base import FakePlatform, FakeRequest, FakeResponse
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN

PII_TYPES = {
    "Email", "EmailHashedUnifiedId2", "PhoneNumber", "PhoneNumberHashedUnifiedId2", "UnifiedId2", "EUID",
}
HASHED_TYPES = {"EmailHashedUnifiedId2", "PhoneNumberHashedUnifiedId2"}
MERGE_MODES = {"Add", "Replace"}
REGIONS = {"US", "EU", "APAC"}
B64_SHA256 = re.compile(r"^[A-Za-z0-9+/]{43}=$")


def _valid_hash(value: str) -> bool:
    if not B64_SHA256.match(value):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


class FakeTradeDesk(FakePlatform):
    prefix = "/ttd"

    def __init__(
        self,
        *,
        api_token: str | None = None,
        partner_id: str | None = None,
        advertiser_id: str | None = None,
        advertiser_name: str | None = None,
        public_url: str | None = None,
        match_percent: int = 65,
    ):
        super().__init__()
        demo = DEMO_CREDENTIALS["ttd"]
        self.api_token = api_token or demo["api_token"]
        partner = partner_id or demo["partner_id"]
        advertiser = advertiser_id or demo["advertiser_id"]
        self.advertisers: dict[str, dict] = {
            advertiser: {
                "AdvertiserId": advertiser,
                "PartnerId": partner,
                "AdvertiserName": advertiser_name or demo["label"],
                "CurrencyCode": "USD",
                "Availability": "Available",
            },
            # Exists, but the token may not manage it.
            "otheradv9": {"AdvertiserId": "otheradv9", "PartnerId": "otherpartner", "AdvertiserName": "Not yours",
                          "CurrencyCode": "EUR", "Availability": "Available", "_forbidden": True},
        }
        # Where the drop URLs point when the request carries no Host header (``responses``-mounted tests).
        self.public_url = public_url
        self.match_percent = match_percent
        self.segments: dict[str, dict] = {}
        self.members: dict[str, set[tuple[str, str]]] = {}
        self.pending: dict[str, dict] = {}
        self.drops: list[dict] = []
        self.add_requests = 0
        self._segment_ids = itertools.count(1)
        self._refs = itertools.count(1)

    # Test helpers -----------------------------------------------------------------------
    def audience_members(self, crm_data_id: str) -> set[tuple[str, str]]:
        with self.lock:
            return set(self.members.get(str(crm_data_id), set()))

    def audience_values(self, crm_data_id: str, pii_type: str) -> set[str]:
        return {value for kind, value in self.audience_members(crm_data_id) if kind == pii_type}

    def matched_count(self, crm_data_id: str) -> int:
        """How many members would match TTD users (deterministic from the hashes); not on the wire."""
        return sum(1 for member in self.audience_members(crm_data_id) if self._matched(member))

    def _matched(self, member: tuple[str, str]) -> bool:
        digest = hashlib.sha256("|".join(member).encode()).hexdigest()
        return int(digest[:8], 16) % 100 < self.match_percent

    @staticmethod
    def error_response(status: int, message: str, *, details: list[dict] | None = None,
                       headers: dict | None = None) -> FakeResponse:
        body: dict = {"Message": message}
        if details:
            body["ErrorDetails"] = details
        return FakeResponse(status, body, headers=dict(headers or {}))

    def _invalid(self, prop: str, reason: str) -> FakeResponse:
        return self.error_response(400, "The request is invalid.", details=[{"Property": prop, "Reasons": [reason]}])

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["drop"]:
            return self._receive_drop(request, parts[1:])
        if parts[:1] != ["v3"]:
            return self.error_response(404, f"No HTTP resource was found that matches the request URI {request.path}.")
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        parts = parts[1:]
        method = request.method
        if len(parts) == 2 and parts[0] == "advertiser" and method == "GET":
            return self._advertiser(parts[1])
        if parts[:2] == ["crmdata", "segment"]:
            rest = parts[2:]
            if not rest and method == "POST":
                return self._create(request)
            if len(rest) == 2:
                advertiser, crm_id = rest
                refused = self._check_advertiser(advertiser)
                if refused is not None:
                    return refused
                segment = self.segments.get(crm_id)
                if segment is None or segment["AdvertiserId"] != advertiser:
                    return self.error_response(404, f"CRM data segment {crm_id} was not found.")
                if method == "GET":
                    return FakeResponse(200, dict(segment))
                if method == "POST":
                    return self._new_drop(request, segment)
                if method == "DELETE":
                    del self.segments[crm_id]
                    self.members.pop(crm_id, None)
                    return FakeResponse(200, b"")
        return self.error_response(405 if parts else 404, f"The requested resource does not support {method} "
                                                          f"{request.path}.")

    def _authenticate(self, request: FakeRequest) -> FakeResponse | None:
        token = request.headers.get("ttd-auth")
        if not token:
            return self.error_response(401, "Authentication is required: send a TTD-Auth header.")
        if token == EXPIRED_TOKEN:
            return self.error_response(401, "The authentication token has expired. Generate a new token.")
        if not hmac.compare_digest(token, self.api_token):
            return self.error_response(401, "Authentication failed: the token is invalid.")
        return None

    def _check_advertiser(self, advertiser_id: str) -> FakeResponse | None:
        advertiser = self.advertisers.get(advertiser_id)
        if advertiser is None:
            return self.error_response(404, f"Advertiser {advertiser_id} was not found.")
        if advertiser.get("_forbidden"):
            return self.error_response(403, f"You do not have permission to access advertiser {advertiser_id}.")
        return None

    def _advertiser(self, advertiser_id: str) -> FakeResponse:
        refused = self._check_advertiser(advertiser_id)
        if refused is not None:
            return refused
        return FakeResponse(200, {k: v for k, v in self.advertisers[advertiser_id].items() if not k.startswith("_")})

    def _json_object(self, request: FakeRequest) -> tuple[dict | None, FakeResponse | None]:
        if "application/json" not in request.headers.get("content-type", ""):
            return None, self.error_response(415, "The request entity's media type is not supported: send JSON.")
        try:
            body = request.json()
        except ValueError:
            return None, self.error_response(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return None, self.error_response(400, "The request body must be a JSON object.")
        return body, None

    def _create(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_object(request)
        if refused is not None:
            return refused
        unknown = set(body) - {"AdvertiserId", "SegmentName", "Region"}
        if unknown:
            return self._invalid(sorted(unknown)[0], "The property is not recognized.")
        advertiser = body.get("AdvertiserId")
        if not isinstance(advertiser, str) or not advertiser:
            return self._invalid("AdvertiserId", "The AdvertiserId field is required.")
        refused = self._check_advertiser(advertiser)
        if refused is not None:
            return refused
        name = body.get("SegmentName")
        if not isinstance(name, str) or not name.strip():
            return self._invalid("SegmentName", "The SegmentName field is required.")
        if len(name) > 256:
            return self._invalid("SegmentName", "The SegmentName must be at most 256 characters.")
        region = body.get("Region", "US")
        if region not in REGIONS:
            return self._invalid("Region", f"Region must be one of {', '.join(sorted(REGIONS))}.")
        crm_id = f"crm{next(self._segment_ids):05d}"
        self.segments[crm_id] = {
            "AdvertiserId": advertiser,
            "CrmDataId": crm_id,
            "SegmentName": name,
            "Region": region,
            "FirstPartyDataId": 40_000_000 + int(crm_id[3:]),
        }
        self.members[crm_id] = set()
        return FakeResponse(200, {"CrmDataId": crm_id, "FirstPartyDataId": self.segments[crm_id]["FirstPartyDataId"]})

    def _new_drop(self, request: FakeRequest, segment: dict) -> FakeResponse:
        body, refused = self._json_object(request)
        if refused is not None:
            return refused
        if "RetentionEnabled" in body:
            return self._invalid("RetentionEnabled", "The property was removed on 2024-09-30 and is not accepted.")
        unknown = set(body) - {"PiiType", "MergeMode"}
        if unknown:
            return self._invalid(sorted(unknown)[0], "The property is not recognized.")
        pii = body.get("PiiType")
        if pii not in PII_TYPES:
            return self._invalid("PiiType", f"PiiType must be one of {', '.join(sorted(PII_TYPES))}.")
        if pii.startswith("Phone") and segment["Region"] == "EU":
            return self._invalid("PiiType", "Phone numbers cannot be uploaded to EU segments.")
        mode = body.get("MergeMode")
        if mode not in MERGE_MODES:
            return self._invalid("MergeMode", "MergeMode must be Add or Replace.")
        ref = f"{next(self._refs):08x}-c9c7-4000-9191-000000000000"
        signature = hashlib.sha256(f"drop:{ref}:{self.api_token}".encode()).hexdigest()
        self.pending[ref] = {"crm": segment["CrmDataId"], "pii": pii, "mode": mode, "signature": signature}
        host = request.headers.get("host")
        base = f"http://{host}{self.prefix}" if host else (self.public_url or "http://ttd-drop.invalid").rstrip("/")
        url = (f"{base}/drop/{ref}/pii?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600"
               f"&X-Amz-Signature={signature}")
        return FakeResponse(200, {"ReferenceId": ref, "Url": url})

    # Drop storage (S3-like) ---------------------------------------------------------------
    @staticmethod
    def _s3_error(status: int, code: str, message: str) -> FakeResponse:
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>'
               f"<Error><Code>{code}</Code><Message>{message}</Message></Error>")
        return FakeResponse(status, xml, headers={"Content-Type": "application/xml"})

    def _receive_drop(self, request: FakeRequest, parts: list[str]) -> FakeResponse:
        if request.method != "PUT" or len(parts) != 2 or parts[1] != "pii":
            return self._s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        drop = self.pending.get(parts[0])
        signature = (request.query.get("X-Amz-Signature") or [""])[-1]
        if drop is None or not hmac.compare_digest(signature, drop["signature"]):
            return self._s3_error(403, "AccessDenied", "The request signature does not match.")
        if "ttd-auth" in request.headers or "authorization" in request.headers:
            # A pre-signed URL takes no other credentials: a client sending them leaks them to the storage.
            return self._s3_error(400, "InvalidArgument", "Only one auth mechanism allowed.")
        if not request.headers.get("content-type", "").startswith("text/plain"):
            return self._s3_error(400, "InvalidArgument", "The drop must be text/plain.")
        del self.pending[parts[0]]
        try:
            lines = [line.strip() for line in request.body.decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            lines = []
        valid = [v for v in lines if drop["pii"] not in HASHED_TYPES or _valid_hash(v)]
        crm = drop["crm"]
        if crm in self.members:
            values = {(drop["pii"], v) for v in valid}
            if drop["mode"] == "Replace":
                self.members[crm] = values
            else:
                self.members[crm] |= values
        self.add_requests += 1
        self.drops.append({"crm": crm, "pii": drop["pii"], "mode": drop["mode"], "lines": len(lines),
                           "invalid": len(lines) - len(valid)})
        etag = hashlib.md5(request.body, usedforsecurity=False).hexdigest()
        return FakeResponse(200, b"", headers={"ETag": f'"{etag}"'})
