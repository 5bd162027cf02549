"""A fake of Meta's Graph API (v26.0) for customer-file custom audiences.

It speaks the wire format the facebook-business SDK produces and Meta answers: parameters in the
query string or an urlencoded body (``payload`` and ``session`` JSON-encoded as the SDK encodes
them), JSON answers, and Graph's error shape
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.

Every request must carry a known ``access_token`` and the matching ``appsecret_proof``
(HMAC-SHA256 of the token keyed by the app secret), as Meta requires when an app has "Require App
Secret" on. The default constructor accepts ``sandbox.credentials.DEMO_CREDENTIALS["meta"]``;
``sandbox.credentials.EXPIRED_TOKEN`` is answered with code 190 (session expired).

State: ad accounts (status, Custom Audience terms), audiences, members per audience (each member is
a frozenset of ``(schema key, value)`` pairs), upload sessions. Helpers for tests:
``audience_members(id)``, ``audience_values(id, "EMAIL")``, ``received_rows``, ``add_requests``,
``remove_requests``, ``replace_requests``, and ``error_response(...)`` to script Graph errors with
``inject(Fault(response=...))``.

Tokens and sign-in (``tokens``): every token the fake accepts has a type, ``expires_at`` and
``data_access_expires_at`` (Unix seconds, 0 = never) and scopes, reported by ``GET /debug_token`` exactly as Graph
does (asked with the app access token ``{app_id}|{app_secret}``; a user token cannot inspect itself). The demo token
is a system user's (never expires). ``GET /{v}/dialog/oauth`` is the login dialog (sandbox.oauth.ConsentScreen),
``GET /{v}/oauth/access_token`` exchanges its code for a short-lived user token (2 hours) and, with
``grant_type=fb_exchange_token``, a user token for a long-lived one (60 days; data access stays 90 days from the
sign-in); ``GET /me/adaccounts`` lists the ad accounts. A token without ``ads_management`` is refused on every ad
account and audience call (code 200), an expired one with code 190 / subcode 463.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import re
import time

from sandbox.base import FakePlatform, FakeRequest, FakeResponse, PastedToken
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from sandbox.oauth import ConsentScreen, signed

API_VERSION = "v26.0"
MAX_ROWS = 10_000
SCHEMA_KEYS = ("EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP", "COUNTRY",
               "MADID", "EXTERN_ID")
# Meta takes mobile advertiser ids raw, and external ids as the advertiser sends them.
UNHASHED_KEYS = {"MADID", "EXTERN_ID"}
# Identifiers strong enough that a removal row naming one removes the member holding it.
REMOVAL_KEYS = {"EMAIL", "PHONE", "MADID", "EXTERN_ID"}
# Without one of those, a row identifies someone only by a full name and somewhere (Meta matches on combinations:
# a first name alone names nobody).
NAME_KEYS = {"FN", "LN"}
PLACE_KEYS = {"ZIP", "CT", "ST", "DOBY", "DOBM", "DOBD", "COUNTRY"}
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
FILE_SOURCES = {"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"}
SHORT_LIVED = 2 * 3600
LONG_LIVED = 60 * 86_400
DATA_ACCESS = 90 * 86_400


def appsecret_proof(access_token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


class _Roster:
    """One audience's members, with what removal and status need kept current as members come and go: who
    holds each removal identifier, and how many are matched. Both then cost O(change), not O(audience): a
    10,000-row removal from a million-member audience was a 1.3 s scan."""

    def __init__(self, is_matched):
        self.members: dict[frozenset, bool] = {}  # member -> whether it "matched a Facebook account"
        # (key, value) -> the member holding it, or a set when several do (rare: shared e-mail addresses).
        self._holders: dict[tuple[str, str], frozenset | set[frozenset]] = {}
        self.matched = 0
        self._is_matched = is_matched

    def add(self, members) -> None:
        holders = self._holders
        for member in members:
            if member in self.members:
                continue
            matched = self.members[member] = self._is_matched(member)
            self.matched += matched
            for pair in member:
                if pair[0] in REMOVAL_KEYS:
                    held = holders.get(pair)
                    if held is None:
                        holders[pair] = member
                    elif type(held) is frozenset:
                        holders[pair] = {held, member}
                    else:
                        held.add(member)

    def remove(self, rows) -> None:
        """Remove every member a row matches: those sharing one of its removal identifiers (email, phone, mobile
        id, external id); a row with none of those (a name and an address) matches the members holding all of
        its values, when those are a full name and a place or birth date."""
        doomed = set()
        for row in rows:
            if row in self.members:
                doomed.add(row)
            strong = False
            for pair in row:
                if pair[0] not in REMOVAL_KEYS:
                    continue
                strong = True
                held = self._holders.get(pair)
                if held is None:
                    continue
                if type(held) is frozenset:
                    doomed.add(held)
                else:
                    doomed.update(held)
            keys = {pair[0] for pair in row}
            if not strong and keys >= NAME_KEYS and keys & PLACE_KEYS:
                doomed.update(member for member in self.members if row <= member)
        for member in doomed:
            self._discard(member)

    def _discard(self, member: frozenset) -> None:
        self.matched -= self.members.pop(member)
        for pair in member:
            if pair[0] not in REMOVAL_KEYS:
                continue
            held = self._holders[pair]
            if type(held) is frozenset:
                del self._holders[pair]
            else:
                held.discard(member)
                if len(held) == 1:
                    self._holders[pair] = next(iter(held))


class FakeMetaGraph(PastedToken, FakePlatform):
    prefix = "/meta"

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        access_token: str | None = None,
        ad_account_id: str | None = None,
        account_name: str | None = None,
        match_percent: int = 70,
        min_reportable: int = 0,
    ):
        super().__init__()
        demo = DEMO_CREDENTIALS["meta"]
        self.app_id = app_id or demo["app_id"]
        self.app_secret = app_secret or demo["app_secret"]
        self.access_token = access_token or demo["access_token"]
        account = ad_account_id or demo["ad_account_id"]
        # ad account id -> its state; tests flip "account_status" / "custom_audience_tos".
        self.accounts: dict[str, dict] = {
            account: {"name": account_name or demo["label"], "account_status": 1, "custom_audience_tos": True}
        }
        self.user = {"id": "10000000000000001", "name": "Demo System User"}
        self.match_percent = match_percent
        # Below this many matched people Meta reports -1 for both bounds.
        self.min_reportable = min_reportable
        self.audiences: dict[str, dict] = {}
        self.members: dict[str, _Roster] = {}
        self.sessions: dict[tuple[str, int], dict] = {}
        self.received_rows = {"add": 0, "remove": 0, "replace": 0}
        self.add_requests = 0
        self.remove_requests = 0
        self.replace_requests = 0
        self._ids = itertools.count(23850000000000001)
        self._trace = itertools.count(1)
        # token -> what debug_token reports about it (and what the fake enforces).
        self.tokens: dict[str, dict] = {self.access_token: {
            "type": "SYSTEM_USER", "expires_at": 0, "data_access_expires_at": 0, "scopes": ["ads_management"],
            "issued_at": int(time.time()), "user_id": self.user["id"]}}
        self.consent = ConsentScreen("Meta", clients=lambda: {self.app_id: self.app_secret}, scope_separator=",",
                                     deny_extra={"error_reason": "user_denied"})
        self.exchanges = 0

    # Test helpers -----------------------------------------------------------------------
    def audience_members(self, audience_id: str) -> set[frozenset]:
        """Members of an audience: each a frozenset of (schema key, value) pairs."""
        with self.lock:
            roster = self.members.get(str(audience_id))
            return set(roster.members) if roster is not None else set()

    def audience_values(self, audience_id: str, key: str) -> set[str]:
        """Every value of one schema column (e.g. "EMAIL") held by an audience's members."""
        return {value for member in self.audience_members(audience_id) for k, value in member if k == key}

    def error_response(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        status: int = 400,
        headers: dict | None = None,
        is_transient: bool | None = None,
    ) -> FakeResponse:
        """A Graph error answer, for ``inject(Fault(response=...))`` and for the fake's own refusals."""
        error = {"message": message, "type": error_type, "code": code, "fbtrace_id": f"AFakeTrace{next(self._trace)}"}
        if subcode is not None:
            error["error_subcode"] = subcode
        if is_transient is not None:
            error["is_transient"] = is_transient
        return FakeResponse(status, {"error": error}, headers=dict(headers or {}))

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts or not re.fullmatch(r"v\d+\.\d+", parts[0]):
            return self.error_response(2500, "Unknown path components: " + request.path, error_type="OAuthException")
        if parts[0] != API_VERSION:
            return self.error_response(2635, f"(#2635) You are calling a deprecated version of the Ads API. "
                                             f"Please update to the latest version: {API_VERSION}.")
        if parts[1:] == ["dialog", "oauth"] and request.method == "GET":
            return self.consent.authorize(request)
        if parts[1:] == ["oauth", "access_token"] and request.method == "GET":
            return self._token_endpoint(request)
        if parts[1:] == ["debug_token"] and request.method == "GET":
            return self._debug_token(request)
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        node, edge = parts[1] if len(parts) > 1 else "", "/".join(parts[2:])
        if (node.startswith("act_") or node in self.audiences or edge == "adaccounts") and \
                "ads_management" not in self.tokens[request.param("access_token")]["scopes"]:
            return self.error_response(200, "(#200) Requires ads_management permission to manage the object",
                                       error_type="OAuthException")
        if node == "me" and edge == "adaccounts" and request.method == "GET":
            rows = [{"id": act, "name": a["name"], "account_status": a["account_status"]}
                    for act, a in self.accounts.items()]
            return FakeResponse(200, {"data": rows, "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}})
        method = request.method
        if node == "me" and not edge and method == "GET":
            return FakeResponse(200, self._fields(request, self.user, default=("id", "name")))
        if node.startswith("act_"):
            return self._ad_account(request, node, edge)
        if node in self.audiences:
            return self._audience(request, node, edge)
        return self._unknown_object(method, node)

    def _authenticate(self, request: FakeRequest) -> FakeResponse | None:
        token = request.param("access_token")
        if not token:
            return self.error_response(
                2500, "An active access token must be used to query information about the current user.")
        if token == EXPIRED_TOKEN:
            return self.error_response(
                190, "Error validating access token: Session has expired on Tuesday, 01-Sep-26 10:00:00 PDT. "
                     "The current time is Wednesday, 02-Sep-26 10:00:00 PDT.", subcode=463)
        info = self.tokens.get(token)
        if info is None:
            return self.error_response(190, "Invalid OAuth access token - Cannot parse access token")
        if info["expires_at"] and info["expires_at"] < time.time():
            return self.error_response(190, "Error validating access token: Session has expired.", subcode=463)
        proof = request.param("appsecret_proof")
        if not proof:
            return self.error_response(
                100, "API calls from the server require an appsecret_proof argument", error_type="GraphMethodException")
        if not hmac.compare_digest(proof, appsecret_proof(token, self.app_secret)):
            return self.error_response(
                100, "Invalid appsecret_proof provided in the API argument", error_type="GraphMethodException")
        return None

    # Tokens and sign-in ------------------------------------------------------------------------
    def issue(self, *, kind: str = "USER", lifetime: int = LONG_LIVED, scopes=("ads_management",),
              data_access_expires_at: int | None = None) -> str:
        """A new token the fake accepts (tests: a user token that expires in ``lifetime`` seconds)."""
        now = int(time.time())
        token = signed("EAAFake")
        self.tokens[token] = {"type": kind, "expires_at": now + lifetime if lifetime else 0,
                              "data_access_expires_at": data_access_expires_at if data_access_expires_at is not None
                              else now + DATA_ACCESS, "scopes": list(scopes), "issued_at": now,
                              "user_id": self.user["id"]}
        return token

    def _oauth_error(self, message: str, code: int = 100) -> FakeResponse:
        return self.error_response(code, message, error_type="OAuthException")

    def _token_endpoint(self, request: FakeRequest) -> FakeResponse:
        client_id, client_secret = request.param("client_id", ""), request.param("client_secret", "")
        if client_id != self.app_id:
            return self._oauth_error("Error validating application. Invalid application ID.", 101)
        if client_secret != self.app_secret:
            return self._oauth_error("Error validating client secret.", 1)
        if request.param("grant_type") == "fb_exchange_token":
            old = self.tokens.get(request.param("fb_exchange_token", ""))
            if old is None or old["type"] != "USER" or (old["expires_at"] and old["expires_at"] < time.time()):
                return self._oauth_error("Error validating access token: the token is invalid or expired.", 190)
            self.exchanges += 1
            token = self.issue(scopes=old["scopes"], data_access_expires_at=old["data_access_expires_at"])
            return FakeResponse(200, {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED})
        code = request.param("code", "")
        if not code:
            return self._oauth_error("Missing authorization code")
        granted = self.consent.redeem(code, client_id=client_id, client_secret=None,
                                      redirect_uri=request.param("redirect_uri", ""))
        if isinstance(granted, str):
            return self._oauth_error("Invalid verification code format.")
        token = self.issue(lifetime=SHORT_LIVED, scopes=granted.scopes)
        return FakeResponse(200, {"access_token": token, "token_type": "bearer", "expires_in": SHORT_LIVED})

    def _debug_token(self, request: FakeRequest) -> FakeResponse:
        if request.param("access_token", "") != f"{self.app_id}|{self.app_secret}":
            return self._oauth_error("(#100) You must provide an app access token, or a user access token that is an "
                                     "owner or developer of the app")
        token = request.param("input_token", "")
        info = self.tokens.get(token)
        if info is None:
            return FakeResponse(200, {"data": {"is_valid": False, "error": {
                "code": 190, "message": "Invalid OAuth access token."}, "scopes": []}})
        valid = not info["expires_at"] or info["expires_at"] > time.time()
        return FakeResponse(200, {"data": {
            "app_id": self.app_id, "type": info["type"], "application": "Sandbox app", "is_valid": valid,
            "expires_at": info["expires_at"], "data_access_expires_at": info["data_access_expires_at"],
            "issued_at": info["issued_at"], "scopes": info["scopes"], "user_id": info["user_id"]}})

    def _unknown_object(self, method: str, node: str) -> FakeResponse:
        verb = {"GET": "get", "POST": "post", "DELETE": "delete"}.get(method, method.lower())
        return self.error_response(
            100,
            f"Unsupported {verb} request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            subcode=33, error_type="GraphMethodException",
        )

    @staticmethod
    def _fields(request: FakeRequest, obj: dict, *, default: tuple[str, ...]) -> dict:
        wanted = request.param("fields")
        names = [f.strip() for f in wanted.split(",") if f.strip()] if wanted else list(default)
        return {name: obj[name] for name in names if name in obj}

    # Ad account -------------------------------------------------------------------------
    def _ad_account(self, request: FakeRequest, node: str, edge: str) -> FakeResponse:
        account = self.accounts.get(node)
        if account is None:
            return self._unknown_object(request.method, node)
        if not edge and request.method == "GET":
            obj = {
                "id": node,
                "account_id": node.removeprefix("act_"),
                "name": account["name"],
                "account_status": account["account_status"],
                "tos_accepted": {"custom_audience_tos": 1} if account["custom_audience_tos"] else {},
            }
            return FakeResponse(200, self._fields(request, obj, default=("id",)))
        if edge == "customaudiences" and request.method == "POST":
            return self._create_audience(request, node, account)
        return self._unknown_object(request.method, f"{node}/{edge}")

    def _create_audience(self, request: FakeRequest, node: str, account: dict) -> FakeResponse:
        if not account["custom_audience_tos"]:
            return self.error_response(
                200,
                "Terms of service has not been accepted. To accept, go to "
                f"https://business.facebook.com/ads/manage/customaudiences/tos/?act={node.removeprefix('act_')}",
                subcode=1870090,
            )
        name = request.param("name")
        if not name:
            return self._invalid("(#100) The parameter name is required")
        subtype = request.param("subtype")
        if subtype != "CUSTOM":
            return self._invalid(f"(#100) Param subtype must be one of {{CUSTOM, ...}}; got {subtype!r}")
        source = request.param("customer_file_source")
        if source not in FILE_SOURCES:
            return self._invalid("(#100) customer_file_source must be one of " + ", ".join(sorted(FILE_SOURCES)))
        audience_id = str(next(self._ids))
        self.audiences[audience_id] = {
            "id": audience_id,
            "account": node,
            "name": name,
            "description": request.param("description", ""),
            "subtype": subtype,
            "customer_file_source": source,
            "replacing": None,
        }
        self.members[audience_id] = _Roster(self._matched)
        return FakeResponse(200, {"id": audience_id})

    def _invalid(self, message: str, *, subcode: int | None = None) -> FakeResponse:
        return self.error_response(100, message, subcode=subcode, error_type="OAuthException")

    # Audience ---------------------------------------------------------------------------
    def _audience(self, request: FakeRequest, audience_id: str, edge: str) -> FakeResponse:
        method = request.method
        if not edge and method == "GET":
            return FakeResponse(200, self._fields(request, self._audience_view(audience_id), default=("id",)))
        if not edge and method == "DELETE":
            del self.audiences[audience_id]
            self.members.pop(audience_id, None)
            return FakeResponse(200, {"success": True})
        if edge == "users" and method in ("POST", "DELETE"):
            return self._users(request, audience_id, "add" if method == "POST" else "remove")
        if edge == "usersreplace" and method == "POST":
            return self._users(request, audience_id, "replace")
        return self._unknown_object(method, f"{audience_id}/{edge}")

    def _matched(self, member: frozenset) -> bool:
        """A deterministic ``match_percent`` of members "match a Facebook account"."""
        digest = hashlib.sha256(repr(sorted(member)).encode()).hexdigest()
        return int(digest[:8], 16) % 100 < self.match_percent

    def _audience_view(self, audience_id: str) -> dict:
        audience = self.audiences[audience_id]
        matched = self.members[audience_id].matched
        if self.min_reportable and matched < self.min_reportable:
            lower = upper = -1
        else:
            lower, upper = math.floor(matched * 0.9), math.ceil(matched * 1.1)
        ready = matched >= 100
        return {
            "id": audience_id,
            "account_id": audience["account"].removeprefix("act_"),
            "name": audience["name"],
            "description": audience["description"],
            "subtype": audience["subtype"],
            "customer_file_source": audience["customer_file_source"],
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "delivery_status": {"code": 200, "description": "This audience is ready for use."} if ready
            else {"code": 300, "description": "This audience is too small to use."},
            "operation_status": {"code": 200, "description": "Normal"} if audience["replacing"] is None
            else {"code": 414, "description": "Replacing the audience's members."},
        }

    def _users(self, request: FakeRequest, audience_id: str, kind: str) -> FakeResponse:
        raw_payload = request.param("payload")
        if not raw_payload:
            return self._invalid("(#100) The parameter payload is required")
        try:
            payload = json.loads(raw_payload)
        except ValueError:
            return self._invalid("(#100) Param payload must be a JSON object")
        if not isinstance(payload, dict):
            return self._invalid("(#100) Param payload must be a JSON object")
        schema, data = payload.get("schema"), payload.get("data")
        if isinstance(schema, str):
            schema = [schema]
        if not isinstance(schema, list) or not schema or not all(isinstance(k, str) for k in schema):
            return self._invalid("(#100) Data is missing or does not match schema: schema must be a list of keys")
        bad = [k for k in schema if k not in SCHEMA_KEYS]
        if bad or len(set(schema)) != len(schema):
            return self._invalid(f"(#100) Invalid schema: {', '.join(bad) or 'duplicate keys'}", subcode=1870053)
        if not isinstance(data, list) or not data:
            return self._invalid("(#100) Data is missing or does not match schema")
        if len(data) > MAX_ROWS:
            return self._invalid(f"(#100) Too many users in one request: {len(data)} (at most {MAX_ROWS})")
        for row in data:
            if not isinstance(row, list) or len(row) != len(schema) or not all(isinstance(v, str) for v in row):
                return self._invalid("(#100) Data is missing or does not match schema")

        session, refused = self._session(request, audience_id, kind)
        if refused is not None:
            return refused
        audience = self.audiences[audience_id]
        if kind != "replace" and audience["replacing"] is not None:
            return self._invalid("(#100) A replace session is in progress for this audience; wait until it ends",
                                 subcode=1870158)

        valid: list[frozenset] = []
        samples: dict[str, str] = {}
        for row in data:
            member, reason = self._member(schema, row)
            if member is None:
                if len(samples) < 5:
                    samples[next((v for v in row if v), "(empty row)")[:64]] = reason
                continue
            valid.append(member)
        if kind == "add":
            self.add_requests += 1
            self.members[audience_id].add(valid)
        elif kind == "remove":
            self.remove_requests += 1
            self.members[audience_id].remove(valid)
        else:
            self.replace_requests += 1
            if audience["replacing"] is None or audience["replacing"]["session_id"] != session["session_id"]:
                audience["replacing"] = {"session_id": session["session_id"], "members": _Roster(self._matched)}
            audience["replacing"]["members"].add(valid)
            if session["last_batch_flag"]:
                self.members[audience_id] = audience["replacing"]["members"]
                audience["replacing"] = None
        self.received_rows[kind] += len(data)
        answer = {
            "audience_id": audience_id,
            "num_received": len(data),
            "num_invalid_entries": len(data) - len(valid),
            "invalid_entry_samples": samples,
        }
        if session is not None:
            answer["session_id"] = str(session["session_id"])
        return FakeResponse(200, answer)

    @staticmethod
    def _member(schema: list[str], row: list[str]) -> tuple[frozenset | None, str]:
        pairs = []
        for key, value in zip(schema, row, strict=True):
            if value == "":
                continue
            if key not in UNHASHED_KEYS and not SHA256_HEX.match(value):
                return None, f"{key} is not a SHA-256 hash (64 lowercase hex characters)"
            pairs.append((key, value))
        if not pairs:
            return None, "the row has no value"
        return frozenset(pairs), ""

    def _session(self, request: FakeRequest, audience_id: str, kind: str) -> tuple[dict | None, FakeResponse | None]:
        raw = request.param("session")
        if raw is None:
            if kind == "replace":
                return None, self._invalid("(#100) The parameter session is required")
            return None, None
        try:
            session = json.loads(raw)
        except ValueError:
            return None, self._invalid("(#100) Param session must be a JSON object")
        if not isinstance(session, dict):
            return None, self._invalid("(#100) Param session must be a JSON object")
        session_id, seq = session.get("session_id"), session.get("batch_seq")
        if not isinstance(session_id, int) or isinstance(session_id, bool) or session_id <= 0:
            return None, self._invalid("(#100) session_id must be a positive integer")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return None, self._invalid("(#100) batch_seq must be an integer starting at 1")
        if not isinstance(session.get("last_batch_flag"), bool):
            return None, self._invalid("(#100) last_batch_flag must be a boolean")
        total = session.get("estimated_num_total")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            return None, self._invalid("(#100) estimated_num_total must be a non-negative integer")
        key = (audience_id, session_id)
        state = self.sessions.setdefault(key, {"kind": kind, "batches": set(), "finished": False})
        if state["kind"] != kind:
            return None, self._invalid("(#100) This session belongs to another operation")
        if state["finished"] and seq not in state["batches"]:
            return None, self._invalid("(#100) The session has already ended (a batch with last_batch_flag arrived)")
        state["batches"].add(seq)
        if session["last_batch_flag"]:
            state["finished"] = True
        return session, None
