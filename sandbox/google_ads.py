"""A loopback gRPC fake of the Google Ads API (v26) for Customer Match.

It speaks the real wire format: a ``grpc.server`` with generic handlers for the services Customer Match uses,
(de)serializing the google-ads library's own proto-plus request / response types, so the official client talks
to it unchanged. Errors are what Google sends: a gRPC status plus a ``GoogleAdsFailure`` in the
``google.ads.googleads.v26.errors.googleadsfailure-bin`` trailing metadata (and ``request-id``), which the
client turns into a real ``GoogleAdsException`` (for INTERNAL and RESOURCE_EXHAUSTED the library deliberately
raises the plain gRPC error, with the same trailing metadata). Partial failures come back in the response's
``partial_failure_error`` (a ``google.rpc.Status`` whose details hold a ``GoogleAdsFailure``), as Google does.

Transport: the port is opened with ``grpc.local_server_credentials(LOCAL_TCP)``: plain text on loopback, but
gRPC still carries call credentials over it, so the client sends its OAuth bearer token exactly as it does over
TLS in production (the adapter uses ``grpc.local_channel_credentials`` when ``GRPC_PLAINTEXT_LOOPBACK``).

Served methods: GoogleAdsService.Search (the few GAQL queries the adapter sends), UserListService.MutateUserLists
(create / remove), OfflineUserDataJobService.CreateOfflineUserDataJob / AddOfflineUserDataJobOperations /
RunOfflineUserDataJob (answers a ``google.longrunning.Operation``, not done: poll the job's status).

Every call must carry ``authorization: Bearer <token>`` metadata; a ``developer-token``, when sent, must be the
known one (developer tokens are optional since their sunset in September 2026, so a call without one is served);
tokens are those ``sandbox.google_oauth`` issues for the known refresh tokens (``accept_token`` adds more). A
``login-customer-id`` must be the customer itself or a manager of it; customers flagged
``manager_only`` are reachable only through their manager.

State for tests: ``user_lists``, ``members`` (per list: member id -> frozenset of identifiers), ``jobs``,
``calls`` (method, request, metadata), ``counters`` (calls per method, operations, identifiers),
``list_identifiers(resource_name, kind)``; faults with ``inject(GrpcFault(...))`` or ``fail_next(kind)``.

Beside this module: ``google_ads_errors.py`` (the scripted faults, the abort a handler raises, and the
``GoogleAdsError`` built as Google builds it); ``GrpcFault`` stays importable from here.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections import Counter, deque
from concurrent import futures
from dataclasses import dataclass

import grpc
from google.ads.googleads.v26.errors.types import errors as errors_types
from google.ads.googleads.v26.resources.types.customer import Customer
from google.ads.googleads.v26.resources.types.offline_user_data_job import OfflineUserDataJob
from google.ads.googleads.v26.resources.types.user_list import UserList
from google.ads.googleads.v26.services.types import google_ads_service as gas
from google.ads.googleads.v26.services.types import offline_user_data_job_service as oudj
from google.ads.googleads.v26.services.types import user_list_service as uls
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.google_ads_errors import FAULTS, GrpcFault, _Abort, _error
from sandbox.google_oauth import access_token_for, is_sandbox_access_token

VERSION = "v26"
SERVICES = f"google.ads.googleads.{VERSION}.services"
FAILURE_KEY = f"google.ads.googleads.{VERSION}.errors.googleadsfailure-bin"
MAX_IDENTIFIERS_PER_REQUEST = 100_000  # per AddOfflineUserDataJobOperations request
MAX_IDENTIFIERS_PER_USER = 20  # per UserData
MAX_LIFE_SPAN = 540  # days, since April 2025 (RangeError.TOO_HIGH above)
MIN_SERVING_SIZE = 100
MANAGER_ID = "9876543210"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
HASHED_FIELDS = ("hashed_email", "hashed_phone_number")


@dataclass
class RecordedCall:
    method: str
    request: object  # the proto-plus request (or protobuf for longrunning)
    metadata: dict[str, str]


class FakeGoogleAdsServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        developer_token: str | None = None,
        refresh_tokens: tuple[str, ...] | None = None,
        match_percent: int = 65,
        complete_jobs: bool = True,
    ):
        demo = DEMO_CREDENTIALS["google_ads"]
        self.host = host
        self.developer_token = developer_token or demo["developer_token"]
        self.access_tokens = {access_token_for(t) for t in (refresh_tokens or (demo["refresh_token"],))}
        customer_id = demo["customer_id"].replace("-", "")
        # customer id -> state; tests flip terms_accepted / manager_only.
        self.customers: dict[str, dict] = {
            customer_id: {"name": demo["label"], "terms_accepted": True, "manager_only": False, "allowlisted": True},
            MANAGER_ID: {"name": "Demo manager", "terms_accepted": True, "manager_only": False, "allowlisted": True},
        }
        self.managers: dict[str, set[str]] = {MANAGER_ID: {customer_id}}
        self.match_percent = match_percent
        # False: jobs stay RUNNING after RunOfflineUserDataJob until finish_jobs() (Google takes hours).
        self.complete_jobs = complete_jobs
        self.lock = threading.RLock()
        self.user_lists: dict[str, dict] = {}  # resource name -> fields
        self.members: dict[str, dict[int, frozenset]] = {}  # list resource name -> member id -> identifiers
        self._index: dict[str, dict[tuple, int]] = {}  # list resource name -> identifier -> member id
        self.jobs: dict[str, dict] = {}  # job resource name -> state
        self.calls: list[RecordedCall] = []
        self.counters: Counter = Counter()
        self.faults: deque[GrpcFault] = deque()
        self.record_requests = True
        self._ids = itertools.count(8_100_000_001)
        self._member_ids = itertools.count(1)
        self._request_ids = itertools.count(1)

        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-google-ads"),
            # Google takes requests far above gRPC's 4 MB default (100,000 identifiers are ~10 MB).
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        self.server.add_generic_rpc_handlers(self._handlers())
        self.port = self.server.add_secure_port(
            f"{host}:{port}", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        )

    # Lifecycle --------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> FakeGoogleAdsServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Test helpers -----------------------------------------------------------------------
    def accept_token(self, access_token: str) -> None:
        with self.lock:
            self.access_tokens.add(access_token)

    def inject(self, fault: GrpcFault) -> None:
        with self.lock:
            self.faults.append(fault)

    def fail_next(self, kind: str, *, method: str | None = None, times: int = 1,
                  retry_delay: float | None = None) -> None:
        """Queue one of the FAULTS presets (e.g. "resource_exhausted" with a retry delay in seconds)."""
        code, error = FAULTS[kind]
        self.inject(GrpcFault(code, (error,) if error else (), method=method, times=times, retry_delay=retry_delay,
                              message=error[2] if error else f"{code.name.replace('_', ' ').title()}"))

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.counters.clear()

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def list_members(self, resource_name: str) -> list[frozenset]:
        with self.lock:
            return list(self.members.get(resource_name, {}).values())

    def list_identifiers(self, resource_name: str, kind: str) -> set:
        """Every identifier of one kind ("hashed_email", "hashed_phone_number", "address") in a list."""
        return {value for member in self.list_members(resource_name) for k, value in member if k == kind}

    def finish_jobs(self, status: str = "SUCCESS", failure_reason: str = "") -> None:
        with self.lock:
            for job in self.jobs.values():
                if job["status"] == "RUNNING":
                    self._complete(job, status, failure_reason)

    # gRPC plumbing ----------------------------------------------------------------------
    def _handlers(self):
        def unary(func, request_type, response_serializer):
            return grpc.unary_unary_rpc_method_handler(
                func, request_deserializer=request_type.deserialize, response_serializer=response_serializer
            )

        return (
            grpc.method_handlers_generic_handler(f"{SERVICES}.GoogleAdsService", {
                "Search": unary(self._wrap("Search", self._search), gas.SearchGoogleAdsRequest,
                                gas.SearchGoogleAdsResponse.serialize),
            }),
            grpc.method_handlers_generic_handler(f"{SERVICES}.UserListService", {
                "MutateUserLists": unary(self._wrap("MutateUserLists", self._mutate_user_lists),
                                         uls.MutateUserListsRequest, uls.MutateUserListsResponse.serialize),
            }),
            grpc.method_handlers_generic_handler(f"{SERVICES}.OfflineUserDataJobService", {
                "CreateOfflineUserDataJob": unary(
                    self._wrap("CreateOfflineUserDataJob", self._create_job), oudj.CreateOfflineUserDataJobRequest,
                    oudj.CreateOfflineUserDataJobResponse.serialize),
                "AddOfflineUserDataJobOperations": unary(
                    self._wrap("AddOfflineUserDataJobOperations", self._add_operations),
                    oudj.AddOfflineUserDataJobOperationsRequest,
                    oudj.AddOfflineUserDataJobOperationsResponse.serialize),
                "RunOfflineUserDataJob": unary(
                    self._wrap("RunOfflineUserDataJob", self._run_job), oudj.RunOfflineUserDataJobRequest,
                    operations_pb2.Operation.SerializeToString),
            }),
        )

    def _wrap(self, method: str, func):
        def handler(request, context: grpc.ServicerContext):
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            request_id = f"fake-{next(self._request_ids):08d}"
            with self.lock:
                self.counters[method] += 1
                if self.record_requests:
                    self.calls.append(RecordedCall(method, request, metadata))
                fault = self._take_fault(method)
            try:
                if fault is not None:
                    errors = [_error(f, n, m, retry_delay=fault.retry_delay) for f, n, m in fault.errors]
                    raise _Abort(fault.code, errors, message=fault.message or fault.code.name)
                with self.lock:
                    self._authenticate(metadata, getattr(request, "customer_id", None) or _customer_of(request))
                    return func(request)
            except _Abort as abort:
                trailing = [("request-id", request_id)]
                if abort.errors:
                    failure = errors_types.GoogleAdsFailure(errors=list(abort.errors), request_id=request_id)
                    trailing.append((FAILURE_KEY, errors_types.GoogleAdsFailure.serialize(failure)))
                context.set_trailing_metadata(tuple(trailing))
                message = abort.message or "; ".join(e.message for e in abort.errors) or abort.code.name
                context.abort(abort.code, message)

        return handler

    def _take_fault(self, method: str) -> GrpcFault | None:
        for fault in self.faults:
            if fault.method in (None, method):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _authenticate(self, metadata: dict[str, str], customer_id: str | None) -> None:
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED
        token = metadata.get("developer-token")
        if token is not None and token != self.developer_token:
            raise _Abort(unauthenticated, [_error(
                "authentication_error", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid.")])
        authorization = metadata.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise _Abort(unauthenticated, [_error(
                "authentication_error", "OAUTH_TOKEN_HEADER_INVALID",
                "Request is missing required authentication credential. Expected OAuth 2 access token.")])
        if authorization.removeprefix("Bearer ") not in self.access_tokens and not is_sandbox_access_token(
                authorization.removeprefix("Bearer ")):
            raise _Abort(unauthenticated, [_error(
                "authentication_error", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")])
        if customer_id is None:
            return
        if not customer_id.isdigit() or len(customer_id) != 10:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "request_error", "INVALID_CUSTOMER_ID", "Invalid customer ID.")])
        customer = self.customers.get(customer_id)
        if customer is None:
            raise _Abort(unauthenticated, [_error(
                "authentication_error", "CUSTOMER_NOT_FOUND", "No customer found for the provided customer id.")])
        login = metadata.get("login-customer-id")
        direct = login in (None, customer_id) and not customer["manager_only"]
        via_manager = login is not None and customer_id in self.managers.get(login, set())
        if not (direct or via_manager):
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, [_error(*FAULTS["authorization"][1])])

    # GoogleAdsService.Search ------------------------------------------------------------
    def _search(self, request: gas.SearchGoogleAdsRequest) -> gas.SearchGoogleAdsResponse:
        query = " ".join(request.query.split())
        resource = re.search(r"\bFROM (\w+)", query)
        resource = resource.group(1) if resource else ""
        customer_id = request.customer_id
        rows: list[gas.GoogleAdsRow] = []
        if resource == "customer":
            rows.append(gas.GoogleAdsRow(customer=Customer(
                resource_name=f"customers/{customer_id}", id=int(customer_id),
                descriptive_name=self.customers[customer_id]["name"])))
        elif resource == "user_list":
            wanted = re.search(r"WHERE user_list\.resource_name = '([^']*)'", query)
            for name, fields in self.user_lists.items():
                if fields["customer"] == customer_id and not fields["removed"] and (not wanted
                                                                                    or wanted.group(1) == name):
                    rows.append(gas.GoogleAdsRow(user_list=self._user_list_row(name, fields)))
        elif resource == "offline_user_data_job":
            jobs = [job for job in self.jobs.values() if job["customer"] == customer_id]
            external = re.search(r"offline_user_data_job\.external_id = (\d+)", query)
            if external:
                jobs = [job for job in jobs if job["external_id"] == int(external.group(1))]
            status = re.search(r"offline_user_data_job\.status = '?(\w+)'?", query)
            if status:
                jobs = [job for job in jobs if job["status"] == status.group(1)]
            user_list = re.search(r"customer_match_user_list_metadata\.user_list = '([^']*)'", query)
            if user_list:
                jobs = [job for job in jobs if job["user_list"] == user_list.group(1)]
            jobs.sort(key=lambda job: job["id"], reverse="DESC" in query)
            for job in jobs:
                rows.append(gas.GoogleAdsRow(offline_user_data_job=OfflineUserDataJob(
                    resource_name=job["resource_name"], id=job["id"], external_id=job["external_id"],
                    type_=job["type"], status=job["status"], failure_reason=job["failure_reason"] or "UNSPECIFIED",
                    customer_match_user_list_metadata={"user_list": job["user_list"]},
                    operation_metadata={"match_rate_range": job["match_rate_range"]},
                )))
        else:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "query_error", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"Unsupported resource in query: {query[:80]}")])
        limit = re.search(r"\bLIMIT (\d+)\s*$", query)
        if limit:
            rows = rows[: int(limit.group(1))]
        return gas.SearchGoogleAdsResponse(results=rows)

    def _user_list_row(self, name: str, fields: dict) -> UserList:
        members = self.members.get(name, {})
        matched = sum(1 for identifiers in members.values() if self._matches(identifiers))
        row = UserList(
            resource_name=name, id=fields["id"], name=fields["name"], description=fields["description"],
            membership_status=fields["membership_status"], membership_life_span=fields["membership_life_span"],
            size_for_display=matched, size_for_search=matched, type_="CRM_BASED",
            eligible_for_search=matched >= MIN_SERVING_SIZE, eligible_for_display=matched >= MIN_SERVING_SIZE,
        )
        if members:
            row.match_rate_percentage = matched * 100 // len(members)
        return row

    def _matches(self, identifiers: frozenset) -> bool:
        """A deterministic ~match_percent of members "match a Google account"."""
        anchor = min(repr(identifier) for identifier in identifiers)
        return int(hashlib.sha256(anchor.encode()).hexdigest()[:8], 16) % 100 < self.match_percent

    # UserListService.MutateUserLists ----------------------------------------------------
    def _mutate_user_lists(self, request: uls.MutateUserListsRequest) -> uls.MutateUserListsResponse:
        if not request.operations:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "request_error", "OPERATION_REQUIRED", "At least one operation is required.")])
        results = []
        for index, operation in enumerate(request.operations):
            kind = uls.UserListOperation.pb(operation).WhichOneof("operation")
            if kind == "create":
                results.append(self._create_list(request.customer_id, operation.create, index))
            elif kind == "remove":
                name = operation.remove
                fields = self.user_lists.get(name)
                if fields is None or fields["removed"] or fields["customer"] != request.customer_id:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                        "mutate_error", "RESOURCE_NOT_FOUND", "Resource was not found.", index=index)])
                fields["removed"] = True
                results.append(uls.MutateUserListResult(resource_name=name))
            else:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                    "mutate_error", "MUTATE_NOT_ALLOWED", "Only create and remove are supported here.", index=index)])
        return uls.MutateUserListsResponse(results=results)

    def _create_list(self, customer_id: str, user_list: UserList, index: int) -> uls.MutateUserListResult:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not user_list.name.strip():
            raise _Abort(invalid, [_error("user_list_error", "INVALID_NAME", "Name is not valid.", index=index)])
        if any(f["name"] == user_list.name and f["customer"] == customer_id and not f["removed"]
               for f in self.user_lists.values()):
            raise _Abort(invalid, [_error("user_list_error", "NAME_ALREADY_USED", "Name is already being used for "
                                          "another user list for the account.", index=index)])
        if user_list.membership_life_span > MAX_LIFE_SPAN:
            raise _Abort(invalid, [_error("range_error", "TOO_HIGH", "Too high.", index=index)])
        crm = user_list.crm_based_user_list
        if "crm_based_user_list" not in user_list or crm.upload_key_type.name in ("UNSPECIFIED", "UNKNOWN"):
            raise _Abort(invalid, [_error("user_list_error", "CONCRETE_TYPE_REQUIRED",
                                          "Creating user list without setting type.", index=index)])
        list_id = next(self._ids)
        name = f"customers/{customer_id}/userLists/{list_id}"
        self.user_lists[name] = {
            "id": list_id, "customer": customer_id, "name": user_list.name, "description": user_list.description,
            "membership_life_span": user_list.membership_life_span or 30, "membership_status": "OPEN",
            "upload_key_type": crm.upload_key_type.name, "data_source_type": crm.data_source_type.name,
            "removed": False,
        }
        self.members[name] = {}
        self._index[name] = {}
        return uls.MutateUserListResult(resource_name=name)

    # OfflineUserDataJobService ----------------------------------------------------------
    def _check_allowlisted(self, customer_id: str) -> None:
        """Customer Match through the Google Ads API only for allowlisted customers (since 1 April 2026)."""
        if not self.customers.get(customer_id, {}).get("allowlisted", True):
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, [_error(
                "not_allowlisted_error", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE",
                "Customer is not allowlisted for accessing this feature.")])

    def _create_job(self, request: oudj.CreateOfflineUserDataJobRequest) -> oudj.CreateOfflineUserDataJobResponse:
        job = request.job
        customer_id = request.customer_id
        self._check_allowlisted(customer_id)
        if job.type_.name != "CUSTOMER_MATCH_USER_LIST":
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "offline_user_data_job_error", "INVALID_USER_LIST_TYPE", "Only Customer Match jobs are faked.")])
        metadata = job.customer_match_user_list_metadata
        fields = self.user_lists.get(metadata.user_list)
        if fields is None or fields["removed"] or fields["customer"] != customer_id:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "offline_user_data_job_error", "INVALID_USER_LIST_ID", "The user list ID provided for the job is "
                "invalid.")])
        consent = metadata.consent
        denied = "DENIED" in (consent.ad_user_data.name, consent.ad_personalization.name)
        if denied or not self.customers[customer_id]["terms_accepted"]:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "offline_user_data_job_error", "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
                "Customer has not agreed to the customer data processing terms, or consent was denied.")])
        job_id = next(self._ids)
        name = f"customers/{customer_id}/offlineUserDataJobs/{job_id}"
        self.jobs[name] = {
            "resource_name": name, "id": job_id, "customer": customer_id, "external_id": job.external_id,
            "type": job.type_.name, "user_list": metadata.user_list, "status": "PENDING", "failure_reason": "",
            "consent": (consent.ad_user_data.name, consent.ad_personalization.name) if "consent" in metadata
            else None,
            "operations": [], "match_rate_range": "UNSPECIFIED",
        }
        return oudj.CreateOfflineUserDataJobResponse(resource_name=name)

    def _job(self, name: str, customer_id: str) -> dict:
        job = self.jobs.get(name)
        if job is None or job["customer"] != customer_id:
            raise _Abort(grpc.StatusCode.NOT_FOUND, [_error(
                "request_error", "RESOURCE_NOT_FOUND", "Resource was not found.")])
        return job

    def _add_operations(self, request: oudj.AddOfflineUserDataJobOperationsRequest):
        self._check_allowlisted(_customer_of(request) or "")
        job = self._job(request.resource_name, _customer_of(request) or "")
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if job["status"] != "PENDING":
            raise _Abort(invalid, [_error("offline_user_data_job_error", "JOB_ALREADY_STARTED",
                                          "This job has already been started.")])
        if not request.operations:
            raise _Abort(invalid, [_error("request_error", "OPERATION_REQUIRED", "At least one operation is "
                                          "required.")])
        # Raw protobuf from here on: proto-plus wrappers cost ~50 µs per identifier, too slow for 100k-row demos.
        operations = oudj.AddOfflineUserDataJobOperationsRequest.pb(request).operations
        total = sum(len(op.create.user_identifiers) + len(op.remove.user_identifiers) for op in operations)
        if total > MAX_IDENTIFIERS_PER_REQUEST:
            raise _Abort(invalid, [_error("offline_user_data_job_error", "TOO_MANY_USER_IDENTIFIERS",
                                          "Maximum number of user identifiers allowed per request is 100,000 and per "
                                          "operation is 20.")])
        upload_key_type = self.user_lists[job["user_list"]]["upload_key_type"]
        failures, accepted = [], []
        for index, operation in enumerate(operations):
            problem = self._check_operation(operation, index, upload_key_type)
            if problem is None:
                accepted.append(operation)
            else:
                failures.append(problem)
        self.counters["operations"] += len(operations)
        self.counters["identifiers"] += total
        self.counters["invalid_operations"] += len(failures)
        if failures and not request.enable_partial_failure:
            raise _Abort(invalid, failures)
        job["operations"].extend(accepted)
        response = oudj.AddOfflineUserDataJobOperationsResponse()
        if failures:
            failure = errors_types.GoogleAdsFailure(errors=failures)
            detail = any_pb2.Any(type_url=f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure",
                                 value=errors_types.GoogleAdsFailure.serialize(failure))
            response.partial_failure_error = status_pb2.Status(
                code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                message=f"Multiple errors in 'details'. First error: {failures[0].message}",
                details=[detail],
            )
        return response

    def _check_operation(self, operation, index: int, upload_key_type: str):
        kind = operation.WhichOneof("operation")
        code = "offline_user_data_job_error"
        if kind == "remove_all":
            return _error(code, "INVALID_OPERATION_ORDER", "remove_all must be the first operation.", index=index) \
                if index else None
        if kind not in ("create", "remove"):
            return _error(code, "MISSING_USER_IDENTIFIER", "Operation has no user data.", index=index)
        identifiers = getattr(operation, kind).user_identifiers
        if not identifiers:
            return _error(code, "MISSING_USER_IDENTIFIER", "User identifiers are required.", index=index)
        if len(identifiers) > MAX_IDENTIFIERS_PER_USER:
            return _error(code, "TOO_MANY_USER_IDENTIFIERS", "Maximum number of user identifiers allowed per "
                          "operation is 20.", index=index)
        for identifier in identifiers:
            which = identifier.WhichOneof("identifier")
            if which in HASHED_FIELDS:
                if not SHA256_HEX.match(getattr(identifier, which)):
                    return _error(code, "INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.",
                                  index=index)
            elif which == "address_info":
                address = identifier.address_info
                for value in (address.hashed_first_name, address.hashed_last_name):
                    if not SHA256_HEX.match(value):
                        return _error(code, "INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.",
                                      index=index)
                if not re.fullmatch(r"[A-Z]{2}", address.country_code):
                    return _error(code, "INVALID_COUNTRY_CODE", "The country code is invalid.", index=index)
                if not address.postal_code or SHA256_HEX.match(address.postal_code):
                    # Google takes postal codes unhashed: a hash never matches.
                    return _error(code, "INVALID_ENCODING", "Postal code must be sent unhashed.", index=index)
            elif which in ("mobile_id", "third_party_user_id"):
                if upload_key_type == "CONTACT_INFO":
                    return _error(code, "INCOMPATIBLE_UPLOAD_KEY_TYPE", "The user identifier type is not "
                                  "compatible with the list's upload key type.", index=index)
            else:
                return _error(code, "MISSING_USER_IDENTIFIER", "Empty user identifier.", index=index)
        return None

    def _run_job(self, request: oudj.RunOfflineUserDataJobRequest) -> operations_pb2.Operation:
        customer_id = request.resource_name.split("/")[1] if request.resource_name.startswith("customers/") else ""
        job = self._job(request.resource_name, customer_id)
        if job["status"] != "PENDING":
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, [_error(
                "offline_user_data_job_error", "JOB_ALREADY_STARTED", "This job has already been started.")])
        job["status"] = "RUNNING"
        job["match_rate_range"] = self._match_rate_range(job["operations"])
        if self.complete_jobs:
            self._complete(job, "SUCCESS", "")
        # Google answers a long-running operation that is not done: clients poll it or the job's status.
        return operations_pb2.Operation(name=f"customers/{customer_id}/operations/{job['id']}", done=False)

    def _match_rate_range(self, operations) -> str:
        created = [frozenset(_identifier_key(i) for i in op.create.user_identifiers)
                   for op in operations if op.WhichOneof("operation") == "create"]
        if not created:
            return "UNSPECIFIED"
        percent = 100 * sum(1 for identifiers in created if self._matches(identifiers)) // len(created)
        if percent < 20:
            return "MATCH_RANGE_LESS_THAN_20"
        if percent > 90:
            return "MATCH_RANGE_91_TO_100"
        low = max(20, (percent - 1) // 10 * 10 + 1) if percent > 30 else 20
        return f"MATCH_RANGE_{low}_TO_{30 if low == 20 else low + 9}"

    def _complete(self, job: dict, status: str, failure_reason: str) -> None:
        if status == "SUCCESS":
            for operation in job["operations"]:
                self._apply(job["user_list"], operation)
        job["status"] = status
        job["failure_reason"] = failure_reason

    def _apply(self, list_name: str, operation) -> None:
        members, index = self.members[list_name], self._index[list_name]
        kind = operation.WhichOneof("operation")
        if kind == "remove_all":
            members.clear()
            index.clear()
            return
        identifiers = frozenset(_identifier_key(i) for i in getattr(operation, kind).user_identifiers)
        keys = _person_keys(identifiers)
        known = {index[k] for k in keys if k in index}
        if kind == "create":
            # The same person uploaded again (same email or phone) is merged, not duplicated.
            merged = identifiers.union(*(members.pop(m) for m in known))
            member_id = min(known) if known else next(self._member_ids)
            members[member_id] = merged
            for key in _person_keys(merged):
                index[key] = member_id
        else:
            # Google removes every member matching any identifier of the removal, its address too (not only the
            # members an address alone identifies).
            doomed = {m for m, held in members.items() if held & identifiers}
            for member_id in doomed | known:
                for key in _person_keys(members.pop(member_id, frozenset())):
                    index.pop(key, None)


def _person_keys(identifiers: frozenset) -> frozenset:
    """What tells one person from another: email and phone. Many people share a name and postal code, so an
    address identifies a member only when it is all the member has."""
    strong = frozenset(i for i in identifiers if i[0] != "address")
    return strong or identifiers


def _identifier_key(identifier) -> tuple:
    which = identifier.WhichOneof("identifier")
    if which == "address_info":
        a = identifier.address_info
        return ("address", (a.hashed_first_name, a.hashed_last_name, a.country_code, a.postal_code))
    return (which, getattr(identifier, which))


def _customer_of(request) -> str | None:
    name = getattr(request, "resource_name", "")
    match = re.match(r"customers/(\d+)/", name or "")
    return match.group(1) if match else None
