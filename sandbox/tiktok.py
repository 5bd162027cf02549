"""A fake of TikTok's Business API v1.3 for custom audiences (segment API + dmp/custom_audience).

Mounted under ``/tiktok``; it answers ``/open_api/v1.3/...``, so ``PLATFORM_ENDPOINTS["tiktok"]`` is
``<server>/tiktok/open_api/v1.3``.

Wire format as TikTok speaks it: HTTP 200 for everything TikTok itself answers, with ``{"code", "message",
"request_id", "data"}``; code 0 is success. The token is the raw ``Access-Token`` header (no "Bearer"): missing ->
40104, ``sandbox.credentials.EXPIRED_TOKEN`` -> 40102, anything else unknown (or "Bearer ..." prefixed) -> 40105; an
advertiser the token may not operate -> 40001; invalid parameters -> 40002. List parameters of GET calls are
JSON arrays in the query string (``advertiser_ids=["..."]``), as TikTok requires.

Endpoints: ``GET /advertiser/info/``, ``POST /segment/audience/`` (action create), ``POST /segment/mapping/``
(action add / delete; ``id_schema`` + ``batch_data`` rows aligned with it; at most 1,000 rows), ``GET
/dmp/custom_audience/get/``, ``POST /dmp/custom_audience/delete/``.

TikTok's other return codes, with TikTok's own messages (``RETURN_CODES``; "Appendix - Return Codes",
https://business-api.tiktok.com/portal/docs?id=1737172488964097): ``answer_next(code)`` makes the next request(s)
answer one of them (40016 / 40100 / 40133 throttling, 40202 write conflict, 60001 maintenance, ...). Two arise
from the fake's own state: ``advertiser_qps`` (None: unlimited) answers 40133 with TikTok's message once an
advertiser exceeds that many calls in a second, and ``refuse_ids`` (hashed ids the fake will not take) makes a
mapping request a partial success: code 20001 "Partially successful", the other rows applied, the refused ones
listed as ``data.error_list[] = {obj_id, error_message}`` -- the shape TikTok's batch endpoints use for a partial
result (TikTok documents none for /segment/mapping/: modelled, unverified).

State: audiences and their members as ``(id_type, sha256 hex)`` pairs. ``cover_num`` is the deterministic
number of matched people (a person, one row, matches when one of their ids does; ~``match_percent`` of ids do),
and an audience is valid once it has had data. Helpers: ``audience_members(id)``, ``matched_count(id)``, counters
``add_requests`` / ``remove_requests`` / ``rows_received``, ``error_response(code, message)`` (HTTP 200 envelope)
for fault injection.

Sign-in: ``GET /portal/auth?app_id&state&redirect_uri`` is the advertiser's authorisation screen
(sandbox.oauth.ConsentScreen; "Allow" comes back with ``auth_code`` and ``state``); ``POST
/open_api/v1.3/oauth2/access_token/`` ``{app_id, secret, auth_code}`` answers ``data: {access_token, advertiser_ids,
scope}`` (a long-term token: TikTok's do not expire until revoked), ``GET /open_api/v1.3/oauth2/advertiser/get/?app_id
&secret`` the advertisers the token may operate. ``issued`` holds the tokens it handed out (all accepted).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time

from sandbox.base import FakePlatform, FakeRequest, FakeResponse, Fault, add_user, remove_users, users_holding
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.oauth import ConsentScreen, signed

API = "/open_api/v1.3"
ID_TYPES = {"EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_ROWS = 1_000
# TikTok's return codes and its messages for them (the appendix cited above; 20001 is a result, not an error).
RETURN_CODES = {
    20001: "Partially successful.",
    40016: "Requests made too frequently.",
    40100: "Requests made too frequently.",
    40133: "Requests made too frequently.",
    40201: "Task is not ready.",
    40202: "Write or update entity conflict.",
    50000: "System error",
    50002: "Error processing request on TikTok side. Please see error message for details.",
    60001: "The system is in maintenance.",
}


class FakeTikTok(FakePlatform):
    prefix = "/tiktok"

    def __init__(self, *, access_token: str | None = None, advertiser_id: str | None = None,
                 advertiser_name: str | None = None, match_percent: int = 40, advertiser_qps: int | None = None):
        super().__init__()
        demo = DEMO_CREDENTIALS["tiktok"]
        self.access_token = access_token or demo["access_token"]
        advertiser = advertiser_id or demo["advertiser_id"]
        self.advertisers: dict[str, dict] = {
            advertiser: {"advertiser_id": advertiser, "name": advertiser_name or demo["label"],
                         "status": "STATUS_ENABLE", "currency": "USD", "timezone": "Etc/GMT"},
            "7100000000000000099": {"advertiser_id": "7100000000000000099", "name": "Not yours",
                                    "status": "STATUS_ENABLE", "currency": "EUR", "timezone": "Etc/GMT",
                                    "_forbidden": True},
            "7100000000000000002": {"advertiser_id": "7100000000000000002", "name": "Disabled",
                                    "status": "STATUS_DISABLE", "currency": "USD", "timezone": "Etc/GMT"},
        }
        self.match_percent = match_percent
        self.advertiser_qps = advertiser_qps
        self._calls: dict[str, list[float]] = {}  # advertiser -> call times in the last second
        self.refuse_ids: set[str] = set()
        self.audiences: dict[str, dict] = {}
        self.members: dict[str, set[tuple[str, str]]] = {}
        # Which person an id belongs to (the first id of the row that sent it): cover_num counts people.
        self.person_of: dict[str, dict[tuple[str, str], set[tuple[str, str]]]] = {}  # id -> its users
        self.add_requests = 0
        self.remove_requests = 0
        self.rows_received = 0
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self.app_id, self.app_secret = demo["app_id"], demo["app_secret"]
        self.issued: set[str] = set()
        self.consent = ConsentScreen("TikTok", clients=lambda: {self.app_id: self.app_secret}, client_param="app_id",
                                     code_param="auth_code")

    # Test helpers -----------------------------------------------------------------------
    def audience_members(self, audience_id: str) -> set[tuple[str, str]]:
        with self.lock:
            return set(self.members.get(str(audience_id), set()))

    def matched_count(self, audience_id: str) -> int:
        """People with at least one id that matches a TikTok user."""
        people = self.person_of.get(str(audience_id), {})
        return users_holding(self.audience_members(audience_id), people, self._matched)

    def _matched(self, member: tuple[str, str]) -> bool:
        digest = hashlib.sha256("|".join(member).encode()).hexdigest()
        return int(digest[:8], 16) % 100 < self.match_percent

    def error_response(
        self, code: int, message: str, *, status: int = 200, headers: dict | None = None, data: dict | None = None
    ) -> FakeResponse:
        return FakeResponse(status, self._envelope(code, message, data or {}), headers=dict(headers or {}))

    def answer_next(self, code: int, *, times: int = 1, path: str | None = None, headers: dict | None = None) -> None:
        """The next ``times`` requests (to ``path``, a regex, if given) answer TikTok's ``code`` with its message."""
        message = RETURN_CODES.get(code, "Error")
        self.inject(Fault(response=self.error_response(code, message, headers=headers), times=times,
                          path_regex=path))

    def _envelope(self, code: int, message: str, data: dict) -> dict:
        return {"code": code, "message": message, "request_id": f"2026112512{next(self._request_ids):010d}",
                "data": data}

    def _ok(self, data: dict | None = None) -> FakeResponse:
        return FakeResponse(200, self._envelope(0, "OK", data or {}))

    def _error(self, code: int, message: str) -> FakeResponse:
        return FakeResponse(200, self._envelope(code, message, {}))

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path == "/portal/auth" and request.method == "GET":
            return self.consent.authorize(request)
        if (request.method, request.path) == ("POST", f"{API}/oauth2/access_token/"):
            return self._oauth_access_token(request)
        if not request.path.startswith(API + "/"):
            return FakeResponse(404, "404 page not found", headers={"Content-Type": "text/plain"})
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        route = (request.method, request.path[len(API):])
        handler = {
            ("GET", "/advertiser/info/"): self._advertiser_info,
            ("POST", "/segment/audience/"): self._segment_audience,
            ("POST", "/segment/mapping/"): self._segment_mapping,
            ("GET", "/dmp/custom_audience/get/"): self._audience_get,
            ("POST", "/dmp/custom_audience/delete/"): self._audience_delete,
            ("GET", "/oauth2/advertiser/get/"): self._oauth_advertisers,
        }.get(route)
        if handler is None:
            return self._error(40002, f"No such API: {request.method} {route[1]}")
        return handler(request)

    def _authenticate(self, request: FakeRequest) -> FakeResponse | None:
        token = request.headers.get("access-token", "")
        if not token:
            return self._error(40104, "Access token is null, please check your Access-Token header.")
        if token == EXPIRED_TOKEN:
            return self._error(40102, "Access token has expired. Please refresh it or authorise again.")
        if not hmac.compare_digest(token, self.access_token) and token not in self.issued:
            return self._error(40105, "Access token is incorrect or has been revoked.")
        return None

    # Sign-in -------------------------------------------------------------------------------------
    def _mine(self) -> list[str]:
        return [a for a, info in self.advertisers.items() if not info.get("_forbidden")]

    def _oauth_access_token(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_body(request)
        if refused is not None:
            return refused
        if str(body.get("app_id")) != self.app_id or str(body.get("secret")) != self.app_secret:
            return self._error(40101, "The app_id or secret is invalid.")
        granted = self.consent.redeem(str(body.get("auth_code") or ""), client_id=self.app_id, client_secret=None,
                                      redirect_uri=None)
        if isinstance(granted, str):
            return self._error(40110, "auth_code is invalid or has expired.")
        token = signed("fake-tiktok-")
        self.issued.add(token)
        return self._ok({"access_token": token, "advertiser_ids": self._mine(), "scope": [4, 5, 6]})

    def _oauth_advertisers(self, request: FakeRequest) -> FakeResponse:
        if request.query.get("app_id", [""])[-1] != self.app_id or request.query.get("secret", [""])[-1] != \
                self.app_secret:
            return self._error(40101, "The app_id or secret is invalid.")
        return self._ok({"list": [{"advertiser_id": a, "advertiser_name": self.advertisers[a]["name"]}
                                  for a in self._mine()]})

    def _advertiser(self, advertiser_id) -> tuple[dict | None, FakeResponse | None]:
        advertiser = self.advertisers.get(str(advertiser_id))
        if advertiser is None or advertiser.get("_forbidden"):
            return None, self._error(40001, f"No permission to operate advertiser {advertiser_id}.")
        return advertiser, self._throttle(str(advertiser_id))

    def _throttle(self, advertiser_id: str) -> FakeResponse | None:
        """TikTok's advertiser-level QPS limit (40133), when ``advertiser_qps`` is set."""
        if self.advertiser_qps is None:
            return None
        now = time.monotonic()
        calls = [t for t in self._calls.get(advertiser_id, []) if now - t < 1.0]
        calls.append(now)
        self._calls[advertiser_id] = calls
        if len(calls) <= self.advertiser_qps:
            return None
        return self._error(40133, f"Advertiser ({advertiser_id})'s QPS ({len(calls)}) reaches QPS limit "
                                  f"{self.advertiser_qps} for current path, request is temporarily restricted.")

    def _json_list_param(self, request: FakeRequest, name: str) -> tuple[list | None, FakeResponse | None]:
        raw = (request.query.get(name) or [""])[-1]
        try:
            value = json.loads(raw)
        except ValueError:
            return None, self._error(40002, f"{name}: must be a JSON array, e.g. [\"123\"].")
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return None, self._error(40002, f"{name}: must be a non-empty JSON array of strings.")
        return value, None

    def _json_body(self, request: FakeRequest) -> tuple[dict | None, FakeResponse | None]:
        if "application/json" not in request.headers.get("content-type", ""):
            return None, self._error(40002, "Content-Type must be application/json.")
        try:
            body = request.json()
        except ValueError:
            return None, self._error(40002, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return None, self._error(40002, "The request body must be a JSON object.")
        return body, None

    def _advertiser_info(self, request: FakeRequest) -> FakeResponse:
        ids, refused = self._json_list_param(request, "advertiser_ids")
        if refused is not None:
            return refused
        found = []
        for advertiser_id in ids:
            advertiser, refused = self._advertiser(advertiser_id)
            if refused is not None:
                return refused
            found.append({k: v for k, v in advertiser.items() if not k.startswith("_")})
        return self._ok({"list": found})

    def _segment_audience(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_body(request)
        if refused is not None:
            return refused
        _, refused = self._advertiser(body.get("advertiser_id"))
        if refused is not None:
            return refused
        if body.get("action") != "create":
            return self._error(40002, "action: only create is supported by this fake.")
        name = body.get("custom_audience_name")
        if not isinstance(name, str) or not name.strip():
            return self._error(40002, "custom_audience_name: required.")
        if len(name) > 128:
            return self._error(40002, "custom_audience_name: at most 128 characters.")
        audience_id = str(1_780_000_000 + next(self._ids))
        self.audiences[audience_id] = {"audience_id": audience_id, "name": name,
                                       "advertiser_id": str(body["advertiser_id"]), "has_data": False}
        self.members[audience_id] = set()
        self.person_of[audience_id] = {}
        return self._ok({"audience_id": audience_id})

    def _segment_mapping(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_body(request)
        if refused is not None:
            return refused
        advertiser_ids = body.get("advertiser_ids")
        if not isinstance(advertiser_ids, list) or not advertiser_ids:
            return self._error(40002, "advertiser_ids: required.")
        for advertiser_id in advertiser_ids:
            _, refused = self._advertiser(advertiser_id)
            if refused is not None:
                return refused
        action = body.get("action")
        if action not in {"add", "delete"}:
            return self._error(40002, "action: must be add or delete.")
        schema = body.get("id_schema")
        if (not isinstance(schema, list) or not schema or len(set(schema)) != len(schema)
                or not set(schema) <= ID_TYPES):
            return self._error(40002, f"id_schema: a non-empty list of distinct values of {sorted(ID_TYPES)}.")
        rows = body.get("batch_data")
        if not isinstance(rows, list) or not rows:
            return self._error(40002, "batch_data: required.")
        if len(rows) > MAX_ROWS:
            return self._error(40002, f"batch_data: at most {MAX_ROWS} rows; got {len(rows)}.")
        changes: list[tuple[str, list[tuple[str, str]]]] = []  # (audience, one person's ids)
        refused: list[dict] = []
        for n, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(schema):
                return self._error(40002, f"batch_data[{n}]: must have one cell per id_schema entry.")
            row_refused = [cell["id"] for cell in row if isinstance(cell, dict) and cell.get("id") in self.refuse_ids]
            if row_refused:  # validated like any row, then left out of a partial success
                refused += [{"obj_id": value, "error_message": "The id could not be processed."}
                            for value in row_refused]
            row_changes: dict[str, list[tuple[str, str]]] = {}
            for id_type, cell in zip(schema, row, strict=True):
                if cell == {}:
                    continue
                value = cell.get("id") if isinstance(cell, dict) else None
                if not isinstance(value, str) or not HEX64.match(value):
                    return self._error(40002, f"batch_data[{n}]: {id_type} id must be a SHA-256 lowercase hex.")
                audience_ids = cell.get("audience_ids")
                if not isinstance(audience_ids, list) or not audience_ids:
                    return self._error(40002, f"batch_data[{n}]: audience_ids required.")
                for audience_id in audience_ids:
                    audience = self.audiences.get(str(audience_id))
                    if audience is None or audience["advertiser_id"] not in {str(a) for a in advertiser_ids}:
                        return self._error(40002, f"audience_ids: audience {audience_id} does not exist.")
                    row_changes.setdefault(str(audience_id), []).append((id_type, value))
            if not row_refused:
                changes.extend(row_changes.items())
        for audience_id, pairs in changes:
            people, members = self.person_of[audience_id], self.members[audience_id]
            if action == "add":
                add_user(members, people, pairs)
            else:
                remove_users(members, people, pairs)  # the users they match, with all their ids
            self.audiences[audience_id]["has_data"] = True
        if action == "add":
            self.add_requests += 1
        else:
            self.remove_requests += 1
        self.rows_received += len(rows)
        if refused:
            return FakeResponse(200, self._envelope(20001, RETURN_CODES[20001], {"error_list": refused}))
        return self._ok({})

    def _audience_get(self, request: FakeRequest) -> FakeResponse:
        advertiser_id = (request.query.get("advertiser_id") or [""])[-1]
        _, refused = self._advertiser(advertiser_id)
        if refused is not None:
            return refused
        ids, refused = self._json_list_param(request, "custom_audience_ids")
        if refused is not None:
            return refused
        found = []
        for audience_id in ids:
            audience = self.audiences.get(audience_id)
            if audience is None or audience["advertiser_id"] != advertiser_id:
                return self._error(40002, f"custom_audience_ids: audience {audience_id} does not exist.")
            found.append({
                "audience_details": {
                    "audience_id": audience_id,
                    "name": audience["name"],
                    "audience_type": "Customer File",
                    "cover_num": self.matched_count(audience_id),
                    "is_valid": audience["has_data"],
                    "is_expired": False,
                    "is_creator": True,
                    "shared": False,
                },
                "audience_history": [],
            })
        return self._ok({"list": found})

    def _audience_delete(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_body(request)
        if refused is not None:
            return refused
        _, refused = self._advertiser(body.get("advertiser_id"))
        if refused is not None:
            return refused
        ids = body.get("custom_audience_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            return self._error(40002, "custom_audience_ids: 1 to 100 audience ids.")
        for audience_id in ids:
            audience = self.audiences.get(str(audience_id))
            if audience is None or audience["advertiser_id"] != str(body["advertiser_id"]):
                return self._error(40002, f"custom_audience_ids: audience {audience_id} does not exist.")
        for audience_id in ids:
            self.audiences.pop(str(audience_id))
            self.members.pop(str(audience_id), None)
            self.person_of.pop(str(audience_id), None)
        return self._ok({})
