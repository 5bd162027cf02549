"""A fake of LinkedIn's Marketing API (versioned REST) for Matched Audiences: ad accounts and DMP segments.

Mounted under ``/linkedin``; it answers ``/rest/...``, so ``PLATFORM_ENDPOINTS["linkedin"]`` is
``<server>/linkedin/rest``.

Wire format as LinkedIn speaks it: every call needs ``Authorization: Bearer <token>``, a ``LinkedIn-Version:
YYYYMM`` that is still active (older ones get 426 NONEXISTENT_VERSION, a missing one 400 VERSION_MISSING) and
``X-Restli-Protocol-Version: 2.0.0``. Errors are ``{"status", "serviceErrorCode", "code", "message"}``: 401 for a
missing / unknown / expired token (``sandbox.credentials.EXPIRED_TOKEN``), 403 for an account the token may not manage,
404 for unknown segments, 400 / 422 for invalid bodies. ``POST /rest/dmpSegments`` answers 201 with the id in
``x-restli-id``; it takes an optional ``description`` and refuses a ``sourcePlatform`` that is missing or not the
one LinkedIn assigned the app (``SOURCE_PLATFORMS``: the demo app's). ``POST /rest/dmpSegments/{id}/users`` needs
``X-RestLi-Method: BATCH_CREATE``, takes at most 5,000 elements and answers one ``{"status": 201}`` (or 400 with an
error) per element; an idType other than SHA256_EMAIL / SHA512_EMAIL / GOOGLE_AID is refused, APPLE_IDFA too
(LinkedIn no longer takes iOS IDFAs).

State: accounts, segments, members per segment as ``(idType, idValue)`` pairs. An identifier "matches" a
LinkedIn member deterministically from its hash (``match_percent`` of them); a person (the identifiers of one
element) matches when one of theirs does. Statuses show plausible figures: ``inputCount`` is the people streamed,
``matchedCount`` the matched people, ``audienceSize`` is 0 below 300 matched.
Helpers for tests: ``audience_members(segment_id)``, ``people_count`` / ``matched_count(segment_id)``, counters
``add_requests``, ``remove_requests``, ``users_received``, ``error_response(...)``.

Tokens and sign-in: ``tokens`` holds every token the fake accepts (access and refresh) with its ``expires_at`` and
scopes, as LinkedIn's introspection reports them (``POST /oauth/v2/introspectToken``: client id and secret of the app,
the token). The demo access token expires ``DEMO_TOKEN_DAYS`` after the fake starts, as a pasted 60-day token would.
``/oauth/v2/authorization`` is the consent screen (sandbox.oauth.ConsentScreen); ``POST /oauth/v2/accessToken``
exchanges its code (``authorization_code``) for a 60-day access token and a 365-day refresh token, and a refresh
token (``refresh_token``) for a new 60-day access token whose refresh token keeps its end, as LinkedIn documents.
``GET /rest/adAccountUsers?q=authenticatedUser`` lists the member's ad accounts. OAuth errors are
``{"error", "error_description"}``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time

from sandbox.base import FakePlatform, FakeRequest, FakeResponse, PastedToken, add_user, remove_users, users_holding
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.oauth import ConsentScreen, signed

MIN_ACTIVE_VERSION = "202512"  # versions are served for about a year
MAX_ELEMENTS = 5_000
ID_TYPES = {"SHA256_EMAIL", "SHA512_EMAIL", "GOOGLE_AID"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX128 = re.compile(r"^[0-9a-f]{128}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SOURCE_PLATFORMS = {"ACTIVATION_MANAGER", "FAKE"}
MIN_AUDIENCE = 300
ACCESS_TTL = 60 * 86_400
REFRESH_TTL = 365 * 86_400
DEMO_TOKEN_DAYS = 45


class FakeLinkedIn(PastedToken, FakePlatform):
    prefix = "/linkedin"

    def __init__(self, *, access_token: str | None = None, ad_account_id: str | None = None,
                 account_name: str | None = None, match_percent: int = 62):
        super().__init__()
        demo = DEMO_CREDENTIALS["linkedin"]
        self.access_token = access_token or demo["access_token"]
        account = ad_account_id or demo["ad_account_id"]
        self.accounts: dict[str, dict] = {
            account: {"id": int(account), "name": account_name or demo["label"], "status": "ACTIVE",
                      "currency": "USD", "type": "BUSINESS", "reference": "urn:li:organization:2414183"},
            "508999999": {"id": 508999999, "name": "Not yours", "status": "ACTIVE", "currency": "EUR",
                          "type": "BUSINESS", "_forbidden": True},
            "508000001": {"id": 508000001, "name": "Closed account", "status": "CANCELED", "currency": "USD",
                          "type": "BUSINESS"},
        }
        self.match_percent = match_percent
        self.segments: dict[str, dict] = {}
        self.members: dict[str, set[tuple[str, str]]] = {}
        # Which person an identifier belongs to (the first identifier of the element that sent it): figures
        # count people, as LinkedIn's do, not identifiers.
        self.person_of: dict[str, dict[tuple[str, str], set[tuple[str, str]]]] = {}  # id -> its users
        self.add_requests = 0
        self.remove_requests = 0
        self.users_received = 0
        self._ids = itertools.count(1)
        self.client_id, self.client_secret = demo["client_id"], demo["client_secret"]
        now = int(time.time())
        # token -> {"kind": access | refresh, "expires_at", "scopes", "status", "created_at"}
        self.tokens: dict[str, dict] = {self.access_token: {
            "kind": "access", "expires_at": now + DEMO_TOKEN_DAYS * 86_400, "created_at": now, "status": "active",
            "scopes": ["rw_ads", "rw_dmp_segments"]}}
        self.consent = ConsentScreen("LinkedIn", clients=lambda: {self.client_id: self.client_secret})
        self.refreshes = 0

    # Test helpers -----------------------------------------------------------------------
    def audience_members(self, segment_id: str) -> set[tuple[str, str]]:
        with self.lock:
            return set(self.members.get(str(segment_id), set()))

    def people_count(self, segment_id: str) -> int:
        """People with at least one identifier in the segment."""
        people = self.person_of.get(str(segment_id), {})
        return users_holding(self.audience_members(segment_id), people)

    def matched_count(self, segment_id: str) -> int:
        """People with at least one identifier that matches a LinkedIn member."""
        people = self.person_of.get(str(segment_id), {})
        return users_holding(self.audience_members(segment_id), people, self._matched)

    def _matched(self, member: tuple[str, str]) -> bool:
        digest = hashlib.sha256("|".join(member).encode()).hexdigest()
        return int(digest[:8], 16) % 100 < self.match_percent

    @staticmethod
    def error_response(status: int, message: str, *, code: str = "", service_error_code: int = 100,
                       headers: dict | None = None) -> FakeResponse:
        body = {"status": status, "serviceErrorCode": service_error_code, "message": message}
        if code:
            body["code"] = code
        return FakeResponse(status, body, headers=dict(headers or {}))

    def _invalid(self, message: str, status: int = 400) -> FakeResponse:
        return self.error_response(status, message, code="INVALID_INPUT", service_error_code=100)

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] == ["oauth", "v2"]:
            return self._oauth(request, parts[2:])
        if parts[:1] != ["rest"]:
            return self.error_response(404, f"Resource {request.path} does not exist", code="NOT_FOUND")
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        parts = parts[1:]
        method = request.method
        if len(parts) == 2 and parts[0] == "adAccounts" and method == "GET":
            return self._account(parts[1])
        if parts == ["adAccountUsers"] and method == "GET":
            if request.query.get("q") != ["authenticatedUser"]:
                return self._invalid("q=authenticatedUser is required")
            return FakeResponse(200, {"elements": [
                {"account": f"urn:li:sponsoredAccount:{account_id}", "role": "CAMPAIGN_MANAGER",
                 "user": "urn:li:person:sandbox"}
                for account_id, account in self.accounts.items() if not account.get("_forbidden")]})
        if parts == ["dmpSegments"] and method == "POST":
            return self._create(request)
        if len(parts) >= 2 and parts[0] == "dmpSegments":
            segment = self.segments.get(parts[1])
            if segment is None:
                return self.error_response(404, f"DMP segment {parts[1]} does not exist", code="NOT_FOUND")
            refused = self._check_account(segment["account"].rsplit(":", 1)[-1])
            if refused is not None:
                return refused
            if len(parts) == 2 and method == "GET":
                return FakeResponse(200, self._segment_view(parts[1]))
            if len(parts) == 2 and method == "DELETE":
                del self.segments[parts[1]]
                self.members.pop(parts[1], None)
                self.person_of.pop(parts[1], None)
                return FakeResponse(204, b"")
            if parts[2:] == ["users"] and method == "POST":
                return self._users(request, parts[1])
        return self.error_response(405 if parts else 404, f"{method} is not supported on {request.path}",
                                   code="METHOD_NOT_ALLOWED")

    def _check_headers(self, request: FakeRequest) -> FakeResponse | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            return self.error_response(401, "Empty oauth2 access token", code="EMPTY_ACCESS_TOKEN",
                                       service_error_code=65604)
        token = auth[7:]
        if token == EXPIRED_TOKEN:
            return self.error_response(401, "The token used in the request has expired", code="EXPIRED_ACCESS_TOKEN",
                                       service_error_code=65601)
        info = self.tokens.get(token)
        if info is None or info["kind"] != "access" or info["status"] != "active":
            return self.error_response(401, "Invalid access token", code="INVALID_ACCESS_TOKEN",
                                       service_error_code=65600)
        if info["expires_at"] < time.time():
            return self.error_response(401, "The token used in the request has expired", code="EXPIRED_ACCESS_TOKEN",
                                       service_error_code=65601)
        if "rw_dmp_segments" not in info["scopes"] and request.path.startswith("/rest/dmpSegments"):
            return self.error_response(403, "Not enough permissions to access: dmpSegments", code="ACCESS_DENIED")
        version = request.headers.get("linkedin-version", "")
        if not version:
            return self.error_response(400, "A version must be present. Please specify a version by adding the "
                                            "LinkedIn-Version header.", code="VERSION_MISSING")
        if not re.fullmatch(r"20\d{4}(\.\d{2})?", version) or version[:6] < MIN_ACTIVE_VERSION:
            return self.error_response(426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return self._invalid("X-Restli-Protocol-Version 2.0.0 is required for versioned APIs.")
        return None

    # OAuth ------------------------------------------------------------------------------------------
    def issue(self, kind: str = "access", *, ttl: int = ACCESS_TTL, scopes=("rw_ads", "rw_dmp_segments"),
              expires_at: int | None = None) -> str:
        """A token the fake accepts (tests: one that lapses soon)."""
        now = int(time.time())
        token = signed("AQVfake-" if kind == "access" else "AQXfake-refresh-")
        self.tokens[token] = {"kind": kind, "expires_at": expires_at if expires_at is not None else now + ttl,
                              "created_at": now, "status": "active", "scopes": list(scopes)}
        return token

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> FakeResponse:
        return FakeResponse(status, {"error": error, "error_description": description})

    def _oauth(self, request: FakeRequest, parts: list[str]) -> FakeResponse:
        if parts == ["authorization"] and request.method == "GET":
            return self.consent.authorize(request)
        if request.method != "POST" or parts not in (["accessToken"], ["introspectToken"]):
            return self._oauth_error(404, "not_found", f"{request.method} {request.path} is not an OAuth endpoint")
        form = request.form() if "x-www-form-urlencoded" in request.headers.get("content-type", "") else {}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return self._oauth_error(401, "invalid_client", "Client authentication failed")
        if parts == ["introspectToken"]:
            info = self.tokens.get(form.get("token", ""))
            if info is None:
                return FakeResponse(200, {"active": False})
            expired = info["expires_at"] < time.time()
            return FakeResponse(200, {
                "active": info["status"] == "active" and not expired, "client_id": client_id,
                "authorized_at": info["created_at"], "created_at": info["created_at"],
                "status": "expired" if expired else info["status"], "expires_at": info["expires_at"],
                "scope": ",".join(info["scopes"]), "auth_type": "3L"})
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            granted = self.consent.redeem(form.get("code", ""), client_id=client_id, client_secret=client_secret,
                                          redirect_uri=form.get("redirect_uri", ""))
            if isinstance(granted, str):
                return self._oauth_error(400, "invalid_request", "Unable to retrieve access token: authorization "
                                         "code not found")
            refresh = self.issue("refresh", ttl=REFRESH_TTL, scopes=granted.scopes)
            access = self.issue(scopes=granted.scopes)
            return FakeResponse(200, {"access_token": access, "expires_in": ACCESS_TTL, "refresh_token": refresh,
                                      "refresh_token_expires_in": REFRESH_TTL, "scope": ",".join(granted.scopes)})
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            info = self.tokens.get(refresh)
            if info is None or info["kind"] != "refresh" or info["status"] != "active" or \
                    info["expires_at"] < time.time():
                return self._oauth_error(400, "invalid_request", "The provided refresh token is invalid or expired")
            self.refreshes += 1
            access = self.issue(scopes=info["scopes"])
            return FakeResponse(200, {"access_token": access, "expires_in": ACCESS_TTL, "refresh_token": refresh,
                                      "refresh_token_expires_in": max(0, int(info["expires_at"] - time.time())),
                                      "scope": ",".join(info["scopes"])})
        return self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _check_account(self, account_id: str) -> FakeResponse | None:
        account = self.accounts.get(account_id)
        if account is None:
            return self.error_response(404, f"Ad account {account_id} does not exist", code="NOT_FOUND")
        if account.get("_forbidden"):
            return self.error_response(403, "Not enough permissions to access: adAccounts.GET.20260601",
                                       code="ACCESS_DENIED")
        return None

    def _account(self, account_id: str) -> FakeResponse:
        refused = self._check_account(account_id)
        if refused is not None:
            return refused
        return FakeResponse(200, {k: v for k, v in self.accounts[account_id].items() if not k.startswith("_")})

    def _json_object(self, request: FakeRequest) -> tuple[dict | None, FakeResponse | None]:
        if "application/json" not in request.headers.get("content-type", ""):
            return None, self.error_response(415, "Unsupported media type: send application/json.")
        try:
            body = request.json()
        except ValueError:
            return None, self._invalid("The request body is not valid JSON.")
        if not isinstance(body, dict):
            return None, self._invalid("The request body must be a JSON object.")
        return body, None

    def _create(self, request: FakeRequest) -> FakeResponse:
        body, refused = self._json_object(request)
        if refused is not None:
            return refused
        unknown = set(body) - {"name", "description", "sourcePlatform", "account", "accessPolicy", "type",
                               "destinations", "sourceSegmentId"}
        if unknown:
            return self._invalid(f"Unrecognized field /{sorted(unknown)[0]}", 422)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return self._invalid("/name is required", 422)
        account = body.get("account")
        if not isinstance(account, str) or not re.fullmatch(r"urn:li:sponsoredAccount:\d+", account):
            return self._invalid("/account must be a sponsoredAccount URN", 422)
        refused = self._check_account(account.rsplit(":", 1)[-1])
        if refused is not None:
            return refused
        if body.get("type") not in {"USER", "COMPANY"}:
            return self._invalid("/type must be USER or COMPANY", 422)
        if "description" in body and not isinstance(body["description"], str):
            return self._invalid("/description must be a string", 422)
        if not body.get("sourcePlatform"):
            return self._invalid("/sourcePlatform is required", 422)
        if body.get("sourcePlatform") not in SOURCE_PLATFORMS:
            return self._invalid(f"/sourcePlatform {body.get('sourcePlatform')!r} is not enabled for this app", 422)
        destinations = body.get("destinations")
        if destinations != [{"destination": "LINKEDIN"}]:
            return self._invalid("/destinations must be [{destination: LINKEDIN}]", 422)
        segment_id = str(10_000_000 + next(self._ids))
        self.segments[segment_id] = {
            "id": int(segment_id),
            "name": name,
            "account": account,
            "type": body["type"],
            "sourcePlatform": body["sourcePlatform"],
            **({"description": body["description"]} if body.get("description") else {}),
            "accessPolicy": body.get("accessPolicy", "PRIVATE"),
            "destinationSegmentId": f"urn:li:adSegment:{20_000_000 + int(segment_id) % 1_000_000}",
            "streamed": False,
        }
        self.members[segment_id] = set()
        self.person_of[segment_id] = {}
        return FakeResponse(201, b"", headers={"x-restli-id": segment_id,
                                               "Location": f"/dmpSegments/{segment_id}"})

    def _segment_view(self, segment_id: str) -> dict:
        segment = self.segments[segment_id]
        matched = self.matched_count(segment_id)
        destination = {
            "destination": "LINKEDIN",
            "destinationSegmentId": segment["destinationSegmentId"],
            "status": "READY" if segment["streamed"] else "BUILDING",
        }
        view = {k: v for k, v in segment.items() if k not in {"destinationSegmentId", "streamed"}}
        if segment["streamed"]:
            destination["matchedCount"] = matched
            # LinkedIn shows no audience below its minimum.
            destination["audienceSize"] = matched if matched >= MIN_AUDIENCE else 0
            view["inputCount"] = self.people_count(segment_id)
        view["destinations"] = [destination]
        return view

    def _users(self, request: FakeRequest, segment_id: str) -> FakeResponse:
        if request.headers.get("x-restli-method", "").upper() != "BATCH_CREATE":
            return self._invalid("Batch requests need the X-RestLi-Method: BATCH_CREATE header.")
        body, refused = self._json_object(request)
        if refused is not None:
            return refused
        elements = body.get("elements")
        if not isinstance(elements, list) or not elements:
            return self._invalid("/elements is required and must not be empty", 422)
        if len(elements) > MAX_ELEMENTS:
            return self._invalid(f"At most {MAX_ELEMENTS} elements per batch; got {len(elements)}", 422)
        results = []
        members = self.members[segment_id]
        for element in elements:
            problem = self._element_problem(element)
            if problem:
                results.append({"status": 400, "error": {"status": 400, "message": problem}})
                continue
            pairs = [(uid["idType"], uid["idValue"]) for uid in element["userIds"]]
            people = self.person_of[segment_id]
            if element["action"] == "ADD":
                add_user(members, people, pairs)
            else:
                remove_users(members, people, pairs)  # the users they match, with all their ids
            results.append({"status": 201})
        actions = {e.get("action") for e in elements if isinstance(e, dict)}
        self.add_requests += "ADD" in actions
        self.remove_requests += "REMOVE" in actions
        self.users_received += len(elements)
        self.segments[segment_id]["streamed"] = True
        return FakeResponse(200, {"elements": results})

    @staticmethod
    def _element_problem(element) -> str:
        if not isinstance(element, dict):
            return "element must be an object"
        if element.get("action") not in {"ADD", "REMOVE"}:
            return "/action must be ADD or REMOVE"
        user_ids = element.get("userIds")
        if not isinstance(user_ids, list) or not user_ids:
            if not (element.get("firstName") and element.get("lastName")):
                return "/userIds or firstName and lastName are required"
            return "name-only matching is not supported by this fake"
        for uid in user_ids:
            if isinstance(uid, dict) and uid.get("idType") == "APPLE_IDFA":
                return "/userIds/idType APPLE_IDFA is no longer supported"
            if not isinstance(uid, dict) or uid.get("idType") not in ID_TYPES:
                return "/userIds/idType is invalid"
            value = uid.get("idValue")
            pattern = {"SHA256_EMAIL": HEX64, "SHA512_EMAIL": HEX128, "GOOGLE_AID": UUID}[uid["idType"]]
            if not isinstance(value, str) or not pattern.match(value):
                return f"/userIds/idValue is not a valid {uid['idType']}"
        return ""
