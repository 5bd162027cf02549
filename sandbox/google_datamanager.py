"""A loopback gRPC fake of Google's Data Manager API (``google.ads.datamanager.v1``) for Customer Match.

It speaks the real wire format: a ``grpc.server`` with generic handlers for IngestionService (IngestAudienceMembers,
RemoveAudienceMembers, RetrieveRequestStatus) and UserListService (CreateUserList, GetUserList, ListUserLists,
DeleteUserList), (de)serializing the ``google-ads-datamanager`` client's own proto-plus types, so the official client
talks to it unchanged. Port opened with ``grpc.local_server_credentials(LOCAL_TCP)`` (plain text on loopback; the
client still sends its bearer token as call credentials).

Errors are Google's shape: a gRPC status whose ``grpc-status-details-bin`` is a ``google.rpc.Status`` with an
``ErrorInfo`` (reason from Data Manager's ErrorReason, domain ``datamanager.googleapis.com``, ``quota_limit`` metadata
when throttled), a ``RequestInfo`` (request id) and, for INVALID_ARGUMENT on records, a ``BadRequest`` whose field
violations name ``audience_members[i]....``. Like Google (fast-fail model), one bad record fails the whole request.

What it refuses as Google does: more than 10,000 members or 10 destinations a request, more than 10 identifiers
(or none) a member, identifiers that are not hex SHA-256 under HEX encoding, an unhashed-field mistake (hashed
postal code, region code not two letters), no encoding, an operating account that does not exist or that the caller
may not reach (login account must be the account itself or its manager; ``manager_only`` accounts only through the
manager), a user list of another account, Customer Match terms not accepted (unless the request states ACCEPTED),
missing / unknown bearer tokens. Consent is checked where Google checks it, during processing: for accounts flagged
``eea`` a member whose ad_user_data consent is missing counts as PROCESSING_ERROR_REASON_NO_CONSENT and one whose
consent is denied as PROCESSING_ERROR_REASON_DENIED_CONSENT in RetrieveRequestStatus, and is not added.

Membership: per user list, member records (frozensets of identifiers). An ingest adds a record (merged with the
records sharing an email or phone). A removal removes EVERY record that matches ANY identifier sent (address
identifiers included), which is how Google removes.

State for tests: ``user_lists``, ``members``, ``calls`` (method, request, metadata), ``statuses`` (request id ->
per-destination status), ``counters``; faults with ``fail_next(kind)``; ``process_immediately=False`` keeps requests
PROCESSING until ``finish_processing()``.

Beside this module: ``google_datamanager_errors.py`` (the abort a handler raises, the ``fail_next`` presets, the
record checks and the ``google.rpc.Status`` Google answers with).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import uuid
from collections import Counter, deque
from concurrent import futures
from dataclasses import dataclass

import grpc
from google.ads.datamanager_v1.types import ingestion_service as ingestion
from google.ads.datamanager_v1.types import request_status_per_destination as rspd
from google.ads.datamanager_v1.types import user_list as user_list_types
from google.ads.datamanager_v1.types import user_list_service as uls
from google.protobuf import empty_pb2
from grpc_status import rpc_status

from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.google_datamanager_errors import DOMAIN, FAULTS, _Abort, _check_member, _status
from sandbox.google_oauth import access_token_for, is_sandbox_access_token

PACKAGE = "google.ads.datamanager.v1"
MAX_MEMBERS = 10_000
MAX_DESTINATIONS = 10
MAX_MEMBERSHIP_SECONDS = 540 * 86_400
MANAGER_ID = "9876543210"
PARENT = re.compile(r"^accountTypes/GOOGLE_ADS/accounts/(\d+)$")
LIST_NAME = re.compile(r"^accountTypes/GOOGLE_ADS/accounts/(\d+)/userLists/(\d+)$")
LOGIN = re.compile(r"^accountTypes/GOOGLE_ADS/accounts/(\d+)$")


@dataclass
class RecordedCall:
    method: str
    request: object
    metadata: dict[str, str]


class FakeDataManagerServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, refresh_tokens: tuple[str, ...] | None = None,
                 match_percent: int = 65, process_immediately: bool = True):
        demo = DEMO_CREDENTIALS["google_dm"]
        self.host = host
        self.access_tokens = {access_token_for(t) for t in (refresh_tokens or (demo["refresh_token"],))}
        customer_id = demo["customer_id"].replace("-", "")
        # customer id -> state; tests flip terms_accepted / manager_only / eea.
        self.accounts: dict[str, dict] = {
            customer_id: {"terms_accepted": True, "manager_only": False, "eea": True},
            MANAGER_ID: {"terms_accepted": True, "manager_only": False, "eea": False},
        }
        self.managers: dict[str, set[str]] = {MANAGER_ID: {customer_id}}
        self.match_percent = match_percent
        self.process_immediately = process_immediately
        self.lock = threading.RLock()
        self.user_lists: dict[str, dict] = {}  # resource name -> fields
        self.members: dict[str, dict[int, frozenset]] = {}  # list name -> record id -> identifiers
        self.statuses: dict[str, list[dict]] = {}  # request id -> per destination
        self.calls: list[RecordedCall] = []
        self.counters: Counter = Counter()
        self.faults: deque = deque()
        self.record_requests = True
        self._list_ids = itertools.count(9_100_000_001)
        self._record_ids = itertools.count(1)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-datamanager"),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        self.server.add_generic_rpc_handlers(self._handlers())
        self.port = self.server.add_secure_port(
            f"{host}:{port}", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))

    # Lifecycle -----------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> FakeDataManagerServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Test helpers --------------------------------------------------------------------------
    def accept_token(self, access_token: str) -> None:
        with self.lock:
            self.access_tokens.add(access_token)

    def fail_next(self, kind: str, *, method: str | None = None, times: int = 1,
                  retry_delay: float | None = None) -> None:
        with self.lock:
            self.faults.append([kind, method, times, retry_delay])

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.counters.clear()

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def list_members(self, name: str) -> list[frozenset]:
        with self.lock:
            return list(self.members.get(name, {}).values())

    def list_identifiers(self, name: str, kind: str) -> set:
        """Every identifier of one kind ("email_address", "phone_number", "address") in a list."""
        return {value for record in self.list_members(name) for k, value in record if k == kind}

    def finish_processing(self) -> None:
        with self.lock:
            for destinations in self.statuses.values():
                for status in destinations:
                    if status["status"] == "PROCESSING":
                        self._process(status)

    # gRPC plumbing -------------------------------------------------------------------------
    def _handlers(self):
        def unary(name, func, request_type, serializer):
            return grpc.unary_unary_rpc_method_handler(self._wrap(name, func),
                                                       request_deserializer=request_type.deserialize,
                                                       response_serializer=serializer)

        return (
            grpc.method_handlers_generic_handler(f"{PACKAGE}.IngestionService", {
                "IngestAudienceMembers": unary("IngestAudienceMembers", self._ingest,
                                               ingestion.IngestAudienceMembersRequest,
                                               ingestion.IngestAudienceMembersResponse.serialize),
                "RemoveAudienceMembers": unary("RemoveAudienceMembers", self._remove,
                                               ingestion.RemoveAudienceMembersRequest,
                                               ingestion.RemoveAudienceMembersResponse.serialize),
                "RetrieveRequestStatus": unary("RetrieveRequestStatus", self._retrieve,
                                               ingestion.RetrieveRequestStatusRequest,
                                               ingestion.RetrieveRequestStatusResponse.serialize),
            }),
            grpc.method_handlers_generic_handler(f"{PACKAGE}.UserListService", {
                "CreateUserList": unary("CreateUserList", self._create_list, uls.CreateUserListRequest,
                                        user_list_types.UserList.serialize),
                "GetUserList": unary("GetUserList", self._get_list, uls.GetUserListRequest,
                                     user_list_types.UserList.serialize),
                "ListUserLists": unary("ListUserLists", self._list_lists, uls.ListUserListsRequest,
                                       uls.ListUserListsResponse.serialize),
                "DeleteUserList": unary("DeleteUserList", self._delete_list, uls.DeleteUserListRequest,
                                        empty_pb2.Empty.SerializeToString),
            }),
        )

    def _wrap(self, method: str, func):
        def handler(request, context: grpc.ServicerContext):
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            request_id = uuid.uuid4().hex
            with self.lock:
                self.counters[method] += 1
                if self.record_requests:
                    self.calls.append(RecordedCall(method, request, metadata))
                fault = self._take_fault(method)
            try:
                if fault is not None:
                    kind, _, _, retry_delay = fault
                    code, message, reason, meta, domain = FAULTS[kind]
                    raise _Abort(code, message, reason, metadata=meta, retry_delay=retry_delay, domain=domain)
                with self.lock:
                    self._authenticate(metadata)
                    return func(request, metadata, request_id)
            except _Abort as abort:
                context.abort_with_status(rpc_status.to_status(_status(abort, request_id)))

        return handler

    def _take_fault(self, method: str):
        for fault in self.faults:
            if fault[1] in (None, method):
                fault[2] -= 1
                if fault[2] <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _authenticate(self, metadata: dict[str, str]) -> None:
        authorization = metadata.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "Request is missing required authentication credential. "
                         "Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                         "CREDENTIALS_MISSING", metadata={"service": DOMAIN}, domain="googleapis.com")
        if authorization.removeprefix("Bearer ") not in self.access_tokens and not is_sandbox_access_token(
                authorization.removeprefix("Bearer ")):
            raise _Abort(*FAULTS["unauthenticated"][:3], metadata={"service": DOMAIN}, domain="googleapis.com")

    def _reach(self, account_id: str, login_id: str | None) -> None:
        """The caller may act on ``account_id``: directly, or through ``login_id`` when that manages it."""
        account = self.accounts.get(account_id)
        if account is None:
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, "The caller does not have permission for the operating "
                         "account, or it does not exist.", "PERMISSION_DENIED")
        direct = login_id in (None, account_id) and not account["manager_only"]
        via_manager = login_id is not None and account_id in self.managers.get(login_id, set())
        if not (direct or via_manager):
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, "The login account cannot act on the operating account.",
                         "PERMISSION_DENIED")

    @staticmethod
    def _login_header(metadata: dict[str, str]) -> str | None:
        value = metadata.get("login-account")
        if value is None:
            return None
        match = LOGIN.match(value)
        if match is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid login-account header.", "INVALID_RESOURCE_NAME")
        return match.group(1)

    # UserListService -----------------------------------------------------------------------
    def _create_list(self, request: uls.CreateUserListRequest, metadata, request_id):
        parent = PARENT.match(request.parent)
        if parent is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid parent.", "INVALID_RESOURCE_NAME",
                         violations=[("parent", "Invalid resource name.", "INVALID_RESOURCE_NAME")])
        account = parent.group(1)
        self._reach(account, self._login_header(metadata))
        user_list = request.user_list
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not user_list.display_name.strip():
            raise _Abort(invalid, "Display name is not valid.", "INVALID_DISPLAY_NAME",
                         violations=[("user_list.display_name", "Required.", "INVALID_DISPLAY_NAME")])
        if not (user_list.description or "").strip():
            raise _Abort(invalid, "Description is not valid.", "INVALID_DESCRIPTION",
                         violations=[("user_list.description", "Required.", "INVALID_DESCRIPTION")])
        if any(f["display_name"] == user_list.display_name and f["account"] == account
               for f in self.user_lists.values()):
            raise _Abort(invalid, "Display name is already used for another user list of the account.",
                         "DISPLAY_NAME_ALREADY_USED")
        duration = user_list_types.UserList.pb(user_list).membership_duration
        if duration.seconds > MAX_MEMBERSHIP_SECONDS:
            raise _Abort(invalid, "Membership duration is too long.", "MEMBERSHIP_DURATION_TOO_LONG")
        info = user_list.ingested_user_list_info
        key_types = [k.name for k in info.upload_key_types]
        if key_types != ["CONTACT_ID"]:
            raise _Abort(invalid, "Only CONTACT_ID lists are faked.", "UNSUPPORTED_USER_LIST_UPLOAD_KEY_TYPES")
        list_id = next(self._list_ids)
        name = f"accountTypes/GOOGLE_ADS/accounts/{account}/userLists/{list_id}"
        self.user_lists[name] = {
            "id": list_id, "account": account, "display_name": user_list.display_name,
            "description": user_list.description, "membership_seconds": duration.seconds or MAX_MEMBERSHIP_SECONDS,
            "data_source_type": info.contact_id_info.data_source_type.name,
        }
        self.members[name] = {}
        return self._user_list(name)

    def _user_list(self, name: str) -> user_list_types.UserList:
        fields = self.user_lists[name]
        records = self.members.get(name, {})
        matched = sum(1 for identifiers in records.values() if self._matches(identifiers))
        user_list = user_list_types.UserList(
            name=name, id=fields["id"], display_name=fields["display_name"], description=fields["description"],
            membership_status=user_list_types.UserList.MembershipStatus.OPEN,
            size_info=user_list_types.SizeInfo(display_network_members_count=matched,
                                               search_network_members_count=matched),
            target_network_info=user_list_types.TargetNetworkInfo(eligible_for_display=matched >= 100,
                                                                  eligible_for_search=matched >= 100),
            ingested_user_list_info=user_list_types.IngestedUserListInfo(
                upload_key_types=["CONTACT_ID"],
                contact_id_info=user_list_types.ContactIdInfo(
                    data_source_type=fields["data_source_type"],
                    match_rate_percentage=matched * 100 // len(records) if records else 0)),
        )
        user_list_types.UserList.pb(user_list).membership_duration.seconds = fields["membership_seconds"]
        return user_list

    def _named_list(self, name: str, metadata) -> str:
        match = LIST_NAME.match(name)
        if match is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid user list resource name.",
                         "INVALID_RESOURCE_NAME", violations=[("name", "Invalid resource name.",
                                                                "INVALID_RESOURCE_NAME")])
        self._reach(match.group(1), self._login_header(metadata))
        if name not in self.user_lists:
            raise _Abort(grpc.StatusCode.NOT_FOUND, "Resource not found.", "NOT_FOUND")
        return name

    def _get_list(self, request: uls.GetUserListRequest, metadata, request_id):
        return self._user_list(self._named_list(request.name, metadata))

    def _list_lists(self, request: uls.ListUserListsRequest, metadata, request_id):
        parent = PARENT.match(request.parent)
        if parent is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid parent.", "INVALID_RESOURCE_NAME")
        self._reach(parent.group(1), self._login_header(metadata))
        names = [n for n, f in self.user_lists.items() if f["account"] == parent.group(1)]
        if request.page_size:
            names = names[: request.page_size]
        return uls.ListUserListsResponse(user_lists=[self._user_list(n) for n in names])

    def _delete_list(self, request: uls.DeleteUserListRequest, metadata, request_id):
        name = self._named_list(request.name, metadata)
        del self.user_lists[name]
        self.members.pop(name, None)
        return empty_pb2.Empty()

    # IngestionService ----------------------------------------------------------------------
    def _ingest(self, request: ingestion.IngestAudienceMembersRequest, metadata, request_id):
        pb = ingestion.IngestAudienceMembersRequest.pb(request)
        lists = self._check_request(pb)
        for _, destination in lists:
            account = self.accounts[destination.operating_account.account_id]
            accepted = pb.terms_of_service.customer_match_terms_of_service_status == 1  # ACCEPTED
            if not (account["terms_accepted"] or accepted):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Required terms and conditions are not accepted.",
                             "TERMS_AND_CONDITIONS_NOT_SIGNED")
        if pb.validate_only:
            return ingestion.IngestAudienceMembersResponse(request_id=request_id)
        self.statuses[request_id] = [
            {"kind": "ingest", "list": name, "destination": destination, "members": list(pb.audience_members),
             "consent": pb.consent, "status": "PROCESSING"} for name, destination in lists]
        self.counters["members"] += len(pb.audience_members)
        if self.process_immediately:
            for status in self.statuses[request_id]:
                self._process(status)
        return ingestion.IngestAudienceMembersResponse(request_id=request_id)

    def _remove(self, request: ingestion.RemoveAudienceMembersRequest, metadata, request_id):
        pb = ingestion.RemoveAudienceMembersRequest.pb(request)
        lists = self._check_request(pb)
        if pb.validate_only:
            return ingestion.RemoveAudienceMembersResponse(request_id=request_id)
        self.statuses[request_id] = [
            {"kind": "remove", "list": name, "destination": destination, "members": list(pb.audience_members),
             "status": "PROCESSING"} for name, destination in lists]
        if self.process_immediately:
            for status in self.statuses[request_id]:
                self._process(status)
        return ingestion.RemoveAudienceMembersResponse(request_id=request_id)

    def _check_request(self, pb) -> list[tuple[str, object]]:
        """Fast-fail validation of destinations and every record (Google processes none if one is bad)."""
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not pb.destinations:
            raise _Abort(invalid, "Destinations are required.", "REQUIRED_FIELD_MISSING",
                         violations=[("destinations", "Required field is missing.", "REQUIRED_FIELD_MISSING")])
        if len(pb.destinations) > MAX_DESTINATIONS:
            raise _Abort(invalid, "Maximum number of destinations allowed per request is 10.",
                         "TOO_MANY_DESTINATIONS")
        lists = []
        for index, destination in enumerate(pb.destinations):
            operating = destination.operating_account
            if operating.account_type != 1 or not operating.account_id:  # GOOGLE_ADS
                raise _Abort(invalid, "This Destination is not valid.", "INVALID_DESTINATION",
                             violations=[(f"destinations[{index}].operating_account", "This Destination is not "
                                          "valid.", "INVALID_DESTINATION")])
            login = destination.login_account.account_id if destination.HasField("login_account") else None
            self._reach(operating.account_id, login)
            name = f"accountTypes/GOOGLE_ADS/accounts/{operating.account_id}/userLists/" \
                   f"{destination.product_destination_id}"
            if name not in self.user_lists:
                raise _Abort(invalid, "The user list is not valid.", "INVALID_USER_LIST_ID",
                             violations=[(f"destinations[{index}].product_destination_id", "The user list is not "
                                          "valid.", "INVALID_USER_LIST_ID")])
            lists.append((name, destination))
        members = pb.audience_members
        if not members:
            raise _Abort(invalid, "Audience members are required.", "REQUIRED_FIELD_MISSING",
                         violations=[("audience_members", "Required field is missing.", "REQUIRED_FIELD_MISSING")])
        if len(members) > MAX_MEMBERS:
            raise _Abort(invalid, "Maximum number of audience members allowed per request is 10,000.",
                         "TOO_MANY_AUDIENCE_MEMBERS")
        if pb.encoding == 0:
            raise _Abort(invalid, "Encoding is required for hashed user data.", "REQUIRED_FIELD_MISSING",
                         violations=[("encoding", "Required field is missing.", "REQUIRED_FIELD_MISSING")])
        violations = []
        for index, member in enumerate(members):
            violations.extend(_check_member(index, member))
        if violations:
            first = violations[0]
            raise _Abort(invalid, f"There was a problem with the request. {first[1]}", first[2],
                         violations=violations[:100])
        return lists

    def _process(self, status: dict) -> None:
        """What Google does asynchronously: apply the records, count what it rejected and why."""
        name = status["list"]
        records = self.members.setdefault(name, {})
        errors: Counter = Counter()
        identifiers = 0
        applied = []
        account = self.accounts[status["destination"].operating_account.account_id]
        for member in status["members"]:
            identifiers += len(member.user_data.user_identifiers)
            if status["kind"] == "ingest" and account["eea"]:
                consent = member.consent if member.HasField("consent") else status["consent"]
                if consent.ad_user_data == 2 or consent.ad_personalization == 2:  # CONSENT_DENIED
                    errors["PROCESSING_ERROR_REASON_DENIED_CONSENT"] += 1
                    continue
                if consent.ad_user_data == 0:  # unspecified: Google's EU user consent policy needs it
                    errors["PROCESSING_ERROR_REASON_NO_CONSENT"] += 1
                    continue
            applied.append(frozenset(_identifier_key(i) for i in member.user_data.user_identifiers))
        if status["kind"] == "ingest":
            for identifiers_of in applied:
                self._add(records, identifiers_of)
        else:
            sent = frozenset().union(*applied) if applied else frozenset()
            # Google removes every record that matches ANY identifier sent.
            for record_id in [rid for rid, ids in records.items() if ids & sent]:
                del records[record_id]
        status["errors"] = errors
        status["records"] = len(status.pop("members"))  # processed: a long demo must not keep every request
        status["identifiers"] = identifiers
        status["match_rate_range"] = self._match_rate_range(applied) if status["kind"] == "ingest" else ""
        if not errors:
            status["status"] = "SUCCESS"
        elif sum(errors.values()) == status["records"]:
            status["status"] = "FAILED"
        else:
            status["status"] = "PARTIAL_SUCCESS"

    def _add(self, records: dict, identifiers: frozenset) -> None:
        strong = {i for i in identifiers if i[0] != "address"}
        same = [rid for rid, ids in records.items() if strong & ids]
        merged = identifiers.union(*(records.pop(rid) for rid in same))
        records[min(same) if same else next(self._record_ids)] = merged

    def _matches(self, identifiers: frozenset) -> bool:
        anchor = min(repr(i) for i in identifiers) if identifiers else ""
        return int(hashlib.sha256(anchor.encode()).hexdigest()[:8], 16) % 100 < self.match_percent

    def _match_rate_range(self, applied: list[frozenset]) -> str:
        if not applied:
            return "MATCH_RATE_RANGE_NOT_ELIGIBLE"
        percent = 100 * sum(1 for ids in applied if self._matches(ids)) // len(applied)
        if percent < 20:
            return "MATCH_RATE_RANGE_LESS_THAN_20"
        if percent <= 30:
            return "MATCH_RATE_RANGE_20_TO_30"
        if percent > 90:
            return "MATCH_RATE_RANGE_91_TO_100"
        low = (percent - 1) // 10 * 10 + 1
        return f"MATCH_RATE_RANGE_{low}_TO_{low + 9}"

    def _retrieve(self, request: ingestion.RetrieveRequestStatusRequest, metadata, request_id):
        destinations = self.statuses.get(request.request_id)
        if destinations is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "The request ID is not valid.", "INVALID_REQUEST_ID",
                         violations=[("request_id", "The request ID is not valid.", "INVALID_REQUEST_ID")])
        out = []
        RS = rspd.RequestStatusPerDestination  # noqa: N806
        for status in destinations:
            entry = RS(destination=_destination_copy(status["destination"]), request_status=status["status"])
            if status["status"] != "PROCESSING":
                if status["kind"] == "ingest":
                    entry.audience_members_ingestion_status = RS.IngestAudienceMembersStatus(
                        user_data_ingestion_status=RS.IngestUserDataStatus(
                            record_count=status["records"], user_identifier_count=status["identifiers"],
                            upload_match_rate_range=status["match_rate_range"]))
                else:
                    entry.audience_members_removal_status = RS.RemoveAudienceMembersStatus(
                        user_data_removal_status=RS.RemoveUserDataStatus(
                            record_count=status["records"], user_identifier_count=status["identifiers"]))
                if status["errors"]:
                    entry.error_info = {"error_counts": [{"reason": reason, "record_count": count}
                                                         for reason, count in sorted(status["errors"].items())]}
            out.append(entry)
        return ingestion.RetrieveRequestStatusResponse(request_status_per_destination=out)


def _destination_copy(destination):
    from google.ads.datamanager_v1.types import destination as destination_types

    return destination_types.Destination.wrap(type(destination).FromString(destination.SerializeToString()))


def _identifier_key(identifier) -> tuple:
    which = identifier.WhichOneof("identifier")
    if which == "address":
        a = identifier.address
        return ("address", (a.given_name.lower(), a.family_name.lower(), a.region_code.upper(), a.postal_code))
    return (which, getattr(identifier, which).lower())
