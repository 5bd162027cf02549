"""A partner endpoint implementing Activation Manager's Netflix partner contract (docs/partners/netflix.md).

Mounted under ``/netflix`` and serving ``/v1/...``: the demo connection's base URL is
``http://127.0.0.1:8765/netflix/v1``. It checks every request the way the contract says a partner must:
the three signing headers, the key id (``sandbox.credentials.DEMO_CREDENTIALS["netflix"]`` by default;
``sandbox.credentials.EXPIRED_TOKEN`` as a key id is a revoked key), the timestamp against its own injectable
``clock`` (at most ``max_skew`` = 300 s away), the HMAC-SHA256 signature over method, full path, timestamp
and body hash; then the body shapes, limits and segment state. Errors use the contract's shape
``{"error": {"code", "message"}}``.

The signed path is the path as the client sent it, so the fake rebuilds it from its mount prefix
(``signing_prefix``, default ``prefix``) and the path it receives.

Helpers for tests: ``segment_members(id)`` / ``audience_members(id)`` (members as frozensets of
``(column, value)``), ``audience_values(id, column)``, ``add_requests`` / ``remove_requests``,
``error_response(...)``, and ``signature_failures`` (count of refused signatures).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from sandbox.base import FakePlatform, FakeRequest, FakeResponse
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN

COLUMNS = ("email_sha256", "phone_sha256", "maid_sha256")
MAX_MEMBERS = 10_000
MAX_BODY = 10 * 1024 * 1024
MAX_NAME = 200
MAX_DESCRIPTION = 1_000
MAX_ERRORS = 20
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def expected_signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    canonical = "\n".join([method.upper(), path, timestamp, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


class FakeNetflix(FakePlatform):
    prefix = "/netflix"

    def __init__(
        self,
        *,
        partner_id: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        partner_name: str | None = None,
        clock: Callable[[], float] = time.time,
        max_skew: int = 300,
        match_percent: int = 65,
        signing_prefix: str | None = None,
    ):
        super().__init__()
        demo = DEMO_CREDENTIALS["netflix"]
        self.partner_id = partner_id or demo["partner_id"]
        # key id -> (partner id, secret)
        self.keys: dict[str, tuple[str, str]] = {
            api_key or demo["api_key"]: (self.partner_id, api_secret or demo["api_secret"]),
            # A valid key of another partner account (for 403 tests).
            "other-partner-key": ("other-partner", "other-partner-secret"),
        }
        self.partners: dict[str, dict] = {
            self.partner_id: {"id": self.partner_id, "name": partner_name or demo["label"], "status": "active"},
            "other-partner": {"id": "other-partner", "name": "Another partner", "status": "active"},
        }
        self.clock = clock
        self.max_skew = max_skew
        self.match_percent = match_percent
        self.signing_prefix = self.prefix if signing_prefix is None else signing_prefix
        self.segments: dict[str, dict] = {}
        self.members: dict[str, set[frozenset]] = {}
        self.add_requests = 0
        self.remove_requests = 0
        self.signature_failures = 0
        self._ids = itertools.count(1)

    # Test helpers -----------------------------------------------------------------------
    def segment_members(self, segment_id: str) -> set[frozenset]:
        with self.lock:
            return set(self.members.get(str(segment_id), set()))

    audience_members = segment_members

    def audience_values(self, segment_id: str, column: str) -> set[str]:
        return {value for member in self.segment_members(segment_id) for k, value in member if k == column}

    @staticmethod
    def error_response(status: int, code: str, message: str, *, headers: dict | None = None) -> FakeResponse:
        return FakeResponse(status, {"error": {"code": code, "message": message}}, headers=dict(headers or {}))

    def _now(self) -> int:
        return int(self.clock())

    def _iso(self) -> str:
        return datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        key_partner, refused = self._authenticate(request)
        if refused is not None:
            return refused
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return self.error_response(404, "not_found", "No such resource.")
        parts, method = parts[1:], request.method
        if len(parts) == 2 and parts[0] == "partners":
            if method != "GET":
                return self._not_allowed(method)
            return self._partner(parts[1], key_partner)
        if parts[:1] == ["segments"]:
            if len(parts) == 1:
                return self._create(request, key_partner) if method == "POST" else self._not_allowed(method)
            segment = self.segments.get(parts[1])
            if segment is None or segment["partner"] != key_partner:
                return self.error_response(404, "not_found", "No such segment.")
            if len(parts) == 2:
                if method == "GET":
                    return FakeResponse(200, self._view(parts[1]))
                if method == "DELETE":
                    del self.segments[parts[1]]
                    self.members.pop(parts[1], None)
                    return FakeResponse(204)
                return self._not_allowed(method)
            if len(parts) == 3 and parts[2] in ("members:add", "members:remove"):
                if method != "POST":
                    return self._not_allowed(method)
                return self._members(request, parts[1], parts[2].split(":", 1)[1])
        return self.error_response(404, "not_found", "No such resource.")

    def _not_allowed(self, method: str) -> FakeResponse:
        return self.error_response(405, "method_not_allowed", f"{method} is not allowed here.")

    def _authenticate(self, request: FakeRequest) -> tuple[str, FakeResponse | None]:
        key_id = request.headers.get("x-partner-key-id")
        timestamp = request.headers.get("x-partner-timestamp")
        signature = request.headers.get("x-partner-signature")
        if not key_id or not timestamp or not signature:
            return "", self.error_response(
                401, "missing_signature",
                "Send X-Partner-Key-Id, X-Partner-Timestamp and X-Partner-Signature with every request.")
        if key_id == EXPIRED_TOKEN:
            return "", self.error_response(401, "key_revoked", "This API key was revoked.")
        if key_id not in self.keys:
            return "", self.error_response(401, "unknown_key", "Unknown API key.")
        partner, secret = self.keys[key_id]
        now = self._now()
        if not re.fullmatch(r"\d{1,12}", timestamp):
            return "", self.error_response(401, "stale_timestamp",
                                           f"X-Partner-Timestamp must be Unix seconds; the server time is {now}.")
        skew = abs(now - int(timestamp))
        if skew > self.max_skew:
            return "", self.error_response(
                401, "stale_timestamp",
                f"Timestamp {timestamp} is {skew} s from the server time {now} (at most {self.max_skew} s allowed).")
        path = self.signing_prefix + request.path
        if request.query:
            path += "?" + urlencode(request.query, doseq=True)
        wanted = expected_signature(secret, request.method, path, timestamp, request.body)
        if not hmac.compare_digest(signature, wanted):
            self.signature_failures += 1
            return "", self.error_response(401, "invalid_signature", "The request signature does not match.")
        return partner, None

    def _partner(self, partner_id: str, key_partner: str) -> FakeResponse:
        partner = self.partners.get(partner_id)
        if partner is None:
            return self.error_response(404, "not_found", "No such partner.")
        if partner_id != key_partner:
            return self.error_response(403, "forbidden", "This API key belongs to another partner account.")
        return FakeResponse(200, dict(partner))

    def _body(self, request: FakeRequest) -> tuple[dict | None, FakeResponse | None]:
        if len(request.body) > MAX_BODY:
            return None, self.error_response(413, "payload_too_large", "The body is larger than 10 MB.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None, self.error_response(415, "unsupported_media_type", "Send application/json.")
        try:
            body = request.json()
        except ValueError:
            return None, self._invalid("The body is not valid JSON.")
        if not isinstance(body, dict):
            return None, self._invalid("The body must be a JSON object.")
        return body, None

    def _invalid(self, message: str) -> FakeResponse:
        return self.error_response(400, "invalid_request", message)

    def _create(self, request: FakeRequest, partner: str) -> FakeResponse:
        body, refused = self._body(request)
        if refused is not None:
            return refused
        unknown = set(body) - {"name", "description"}
        if unknown:
            return self._invalid(f"Unknown field: {sorted(unknown)[0]}.")
        name, description = body.get("name"), body.get("description", "")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            return self._invalid(f"name is required: 1 to {MAX_NAME} characters.")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            return self._invalid(f"description must be a string of at most {MAX_DESCRIPTION} characters.")
        segment_id = f"seg_{next(self._ids):06d}"
        now = self._iso()
        self.segments[segment_id] = {"partner": partner, "name": name, "description": description,
                                     "created_at": now, "updated_at": now}
        self.members[segment_id] = set()
        return FakeResponse(201, self._view(segment_id))

    def _matched(self, member: frozenset) -> bool:
        digest = hashlib.sha256(repr(sorted(member)).encode()).hexdigest()
        return int(digest[:8], 16) % 100 < self.match_percent

    def _view(self, segment_id: str) -> dict:
        segment, members = self.segments[segment_id], self.members[segment_id]
        return {
            "id": segment_id,
            "name": segment["name"],
            "description": segment["description"],
            "status": "ready" if members else "empty",
            "uploaded_count": len(members),
            "matched_count": sum(1 for m in members if self._matched(m)),
            "created_at": segment["created_at"],
            "updated_at": segment["updated_at"],
        }

    def _members(self, request: FakeRequest, segment_id: str, operation: str) -> FakeResponse:
        body, refused = self._body(request)
        if refused is not None:
            return refused
        unknown = set(body) - {"schema", "members"}
        if unknown:
            return self._invalid(f"Unknown field: {sorted(unknown)[0]}.")
        schema, rows = body.get("schema"), body.get("members")
        if (not isinstance(schema, list) or not schema or len(set(map(str, schema))) != len(schema)
                or not all(isinstance(c, str) and c in COLUMNS for c in schema)):
            return self._invalid(f"schema must list 1 to 3 distinct columns of {', '.join(COLUMNS)}.")
        if not isinstance(rows, list) or not rows:
            return self._invalid("members must be a non-empty list of rows.")
        if len(rows) > MAX_MEMBERS:
            return self.error_response(400, "batch_too_large",
                                       f"At most {MAX_MEMBERS} members per request; got {len(rows)}.")
        for index, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(schema) or not all(isinstance(v, str) for v in row):
                return self._invalid(f"members[{index}] must be a list of {len(schema)} strings, in schema order.")
        valid: list[frozenset] = []
        errors: list[dict] = []
        for index, row in enumerate(rows):
            member, reason = self._member(schema, row)
            if member is None:
                if len(errors) < MAX_ERRORS:
                    errors.append({"index": index, "reason": reason})
                continue
            valid.append(member)
        current = self.members[segment_id]
        if operation == "add":
            self.add_requests += 1
            current.update(valid)
        else:
            self.remove_requests += 1
            doomed = {pair for member in valid for pair in member}
            self.members[segment_id] = {m for m in current if not (m & doomed)}
        self.segments[segment_id]["updated_at"] = self._iso()
        return FakeResponse(200, {"received": len(rows), "accepted": len(valid), "invalid": len(rows) - len(valid),
                                  "errors": errors})

    @staticmethod
    def _member(schema: list[str], row: list[str]) -> tuple[frozenset | None, str]:
        pairs = []
        for column, value in zip(schema, row, strict=True):
            if value == "":
                continue
            if not SHA256_HEX.match(value):
                return None, f"{column} is not a lowercase SHA-256 hex digest"
            pairs.append((column, value))
        if not pairs:
            return None, "the row has no value"
        return frozenset(pairs), ""
