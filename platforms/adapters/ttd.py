"""The Trade Desk: first-party CRM data segments (REST API v3, ``TTD-Auth`` header).

The flow, as The Trade Desk's CRM data API works (its partner portal page "DataIntegrateCRMData", and the
open-source Segment "the-trade-desk-crm" destination that implements it):

1. ``POST /crmdata/segment`` ``{AdvertiserId, SegmentName, Region}`` -> ``{CrmDataId, FirstPartyDataId}``.
2. For each upload ("drop"): ``POST /crmdata/segment/{advertiserId}/{crmDataId}`` ``{PiiType, MergeMode}``
   -> ``{ReferenceId, Url}``; then ``PUT`` the identifiers to ``Url`` (a pre-signed storage URL, not the API),
   ``text/plain``, one value per line. One drop carries ONE PII type, so a batch holding emails and phones
   makes two drops. ``RetentionEnabled`` was removed from the drop request on 2024-09-30 (TTD's upgrade
   notes); it must not be sent.
3. ``GET /crmdata/segment/{advertiserId}/{crmDataId}``: the segment (name, region, first-party data id).
4. ``DELETE /crmdata/segment/{advertiserId}/{crmDataId}``.

Choices and limits:
- Identifiers arrive as base64 of the SHA-256 digest (``platforms.matchkeys`` does TTD's normalization and
  encoding): PiiType ``EmailHashedUnifiedId2`` for emails (Segment's open-source destination: choices "Email" and
  "Hashed Email" = ``EmailHashedUnifiedId2``) and ``PhoneNumberHashedUnifiedId2`` for phones -- UNVERIFIED: no
  page or public code found names TTD's hashed-phone PiiType (Tealium's connector takes "Phone Number (already
  SHA256 hashed)" and base64-encodes it, without naming the type). Keep it in ``PII_TYPES`` only.
- MergeMode is ``Add`` or ``Replace``; there is no way to remove individual users from a CRM segment. So
  this adapter declares no ``remove`` operation; mirror mode uses ``replace_members``: the first drop of a
  replace session is ``Replace``, every later drop of it ``Add``, which leaves exactly the session's members.
- The drop ``Url`` is a third party's pre-signed URL: the TTD token is never sent to it.
- TTD ingests drops asynchronously and documents a minimum of about 1,500 records per drop before a segment
  is built (Segment's connector refuses smaller legacy drops); smaller drops are sent but may not match.
- TTD publishes no numeric rate limits: they are per endpoint and per user account, over (usually) one-minute
  windows, answered with 429. We budget 30 adapter calls a minute per advertiser and honour Retry-After.
- TTD reports no match figures for CRM segments through this API; ``status`` says what it has.
- Data region: the segment's ``Region`` is "The geographical region of the CRM data segment based on the origin of
  PII" (Segment's destination; US, EU or APAC), a property of the advertiser's data, so it is a required field of
  the connection with no default (a connection without one is refused before anything is sent). What an EU
  advertiser changes, as TTD's partners document it: EU data goes through EUID, the European UID -- "If you source
  data in the EU, use the The Trade Desk - CRM (EU) destination" and "If you are sending emails, phone numbers and
  UID2/EUID you must share the signed UID2/EUID agreement with The Trade Desk" (Adobe's TTD CRM page,
  https://experienceleague.adobe.com/en/docs/experience-platform/destinations/catalog/advertising/tradedesk-emails);
  "Note that phone numbers cannot be uploaded to EU segments" (Tealium's TTD CRM connector), so EU segments get
  emails only. The email bytes do not change: EUID's normalization and encoding are UID2's, with the same published
  vectors (https://euid.eu/docs/getting-started/gs-normalization-encoding: "JaneSaoirse+Work@gmail.com" ->
  "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8="). The API host is the same (no regional CRM endpoint is
  documented: unverified) and the PiiType for EU emails is the same ``EmailHashedUnifiedId2`` (unverified: no EUID
  PiiType name found).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import requests
from django import forms

from platforms.adapters.base import (
    ApiVersion,
    AudienceStatus,
    BatchResult,
    Capabilities,
    CredentialsForm,
    Operation,
    PreparedMember,
    RateLimit,
    SecretInput,
    UploadSession,
    ValidationResult,
)
from platforms.adapters.http import HttpAdapter, build_session, error_message, path_of, raise_for_status, send
from platforms.errors import PermanentError, TransientError
from platforms.forms import alnum_id
from platforms.matchkeys import B64

# Our match key -> TTD's PiiType for base64(SHA-256) values, in the order drops are made.
PII_TYPES: tuple[tuple[str, str], ...] = (
    ("email", "EmailHashedUnifiedId2"),
    # UNCONFIRMED name: TTD's public pages found only show the email types. Keep in one place.
    ("phone", "PhoneNumberHashedUnifiedId2"),
)
REGIONS = ("US", "EU", "APAC")
REGION_CHOICES = [("", "— choose —"), ("US", "US (North America)"), ("EU", "EU (EUID)"), ("APAC", "APAC")]
BATCH_SIZE = 100_000  # one drop of 100,000 base64 hashes is ~4.5 MB, far below the drop size limit
MIN_DROP_RECORDS = 1_500
MAX_SEGMENT_NAME = 256
AUTH_HINT = "Check the API token (TTD-Auth) and that it may manage this advertiser's CRM data."
# base64 of a 32-byte digest: 43 characters and one "=" pad.
B64_SHA256 = re.compile(r"^[A-Za-z0-9+/]{43}=$")


def _is_b64_sha256(value: str) -> bool:
    if not isinstance(value, str) or not B64_SHA256.match(value):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False



class TradeDeskCredentialsForm(CredentialsForm):
    secret_fields = ("api_token",)
    help_steps = (
        "Your partner id and advertiser id are shown in The Trade Desk platform (Advertiser → Settings).",
        "Ask your TTD account manager for API access, then create a long-lived API token in the Developer "
        "Portal (Manage API tokens). It is sent as the TTD-Auth header.",
        "First-party CRM data must be enabled for the advertiser.",
        "Choose the advertiser's data region: where the people on your lists are. EU data goes through EUID and "
        "needs the signed EUID agreement with The Trade Desk; EU segments take emails only (no phone numbers).",
    )

    partner_id = forms.CharField(label="Partner ID", max_length=40)
    api_token = forms.CharField(label="API token", max_length=2048, widget=SecretInput())
    advertiser_id = forms.CharField(label="Advertiser ID", max_length=40)
    # No default: the region is where the advertiser's data comes from, and EU data has its own rules (EUID).
    region = forms.ChoiceField(
        label="Data region", choices=REGION_CHOICES,
        help_text="Where the people on your lists are. EU: through EUID (signed EUID agreement needed), emails only.",
    )

    def clean_partner_id(self):
        return alnum_id(self.cleaned_data["partner_id"], "The partner ID")

    def clean_advertiser_id(self):
        return alnum_id(self.cleaned_data["advertiser_id"], "The advertiser ID")


class TradeDeskAdapter(HttpAdapter):
    code = "ttd"
    name = "The Trade Desk"
    docs_url = "https://partner.thetradedesk.com/v3/portal/data/doc/DataFirstPartyCrm"
    api_version = ApiVersion("v3")  # no sunset published for REST API v3
    endpoint_setting = "TTD_API_URL"
    endpoint = "https://api.thetradedesk.com/v3"
    sandbox_endpoint = "/ttd/v3"
    sandbox_credentials = {
        "label": "Demo advertiser",
        "partner_id": "demopartner",
        "api_token": "demo-ttd-api-token",
        "advertiser_id": "demoadv1",
        "region": "US",
    }
    credentials_form = TradeDeskCredentialsForm
    account_field = "advertiser_id"
    match_keys = {
        "email": (("eu", "eg", "e"), B64),  # EmailHashedUnifiedId2 (UID2's form)
        "phone": (("p",), B64),  # PhoneHashedUnifiedId2
    }
    identifier_keys = ("email", "phone")
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        # No REMOVE: CRM segments only take Add or Replace drops (see the module docstring).
        operations=frozenset(
            {Operation.CREATE, Operation.ADD, Operation.REPLACE, Operation.STATUS, Operation.DELETE}
        ),
        rate_limit=RateLimit(requests=30, per_seconds=60),
        min_audience_size=MIN_DROP_RECORDS,
    )

    auth_hint = AUTH_HINT

    def __init__(self, credentials: Mapping[str, object]):
        super().__init__(credentials)
        self._drops: requests.Session | None = None

    # Plumbing ---------------------------------------------------------------------------
    @property
    def advertiser_id(self) -> str:
        return str(self.credentials.get("advertiser_id", "")).strip()

    @property
    def region(self) -> str:
        """The advertiser's data region; a connection without a valid one is refused (no silent "US")."""
        value = str(self.credentials.get("region") or "").strip().upper()
        if value not in REGIONS:
            raise PermanentError(
                f"{self.name}: this connection has no data region. Edit it and choose where the people on your "
                "lists are (US, EU or APAC): The Trade Desk keeps CRM data in the region of its origin, and EU data "
                "goes through EUID.", code="REGION_MISSING")
        return value

    def session_headers(self) -> dict[str, str]:
        return {"TTD-Auth": str(self.credentials.get("api_token", "")), "Accept": "application/json"}

    def error_text(self, response: requests.Response) -> str:
        return _ttd_message(response)

    @property
    def drops(self) -> requests.Session:
        """A session WITHOUT the token: drop URLs belong to TTD's storage, not its API."""
        if self._drops is None:
            self._drops = build_session()
        return self._drops

    def close(self) -> None:
        super().close()
        if self._drops is not None:
            self._drops.close()
            self._drops = None

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        """A cheap authenticated read of the advertiser; it must belong to the configured partner."""
        advertiser = self.call("GET", path_of("advertiser", self.advertiser_id))
        partner = str(self.credentials.get("partner_id", "")).strip()
        found = str(advertiser.get("PartnerId", ""))
        if partner and found and found != partner:
            raise PermanentError(
                f"{self.name}: advertiser {self.advertiser_id} belongs to partner {found}, not {partner}. "
                "Check the partner ID."
            )
        name = str(advertiser.get("AdvertiserName") or self.advertiser_id)
        return ValidationResult(
            account_name=name,
            details={
                "advertiser_id": str(advertiser.get("AdvertiserId", self.advertiser_id)),
                "partner_id": found,
                "currency": advertiser.get("CurrencyCode", ""),
                "region": str(self.credentials.get("region") or "not set"),
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        """Create a CRM data segment (TTD segments have no description: it is not sent)."""
        body = {"AdvertiserId": self.advertiser_id, "SegmentName": name[:MAX_SEGMENT_NAME], "Region": self.region}
        answer = self.call("POST", path_of("crmdata", "segment"), json=body)
        crm_data_id = answer.get("CrmDataId")
        if not crm_data_id:
            raise PermanentError(f"{self.name}: the segment was not created (no CrmDataId in the answer).")
        return str(crm_data_id)

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._upload(audience_id, batch, replace_first=False)

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        # TTD's CRM data API has no per-user removal (MergeMode is Add or Replace); capabilities say so.
        raise PermanentError(
            f"{self.name} cannot remove individual people from a CRM segment; mirror syncs replace the segment."
        )

    def replace_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession
    ) -> BatchResult:
        """Batch 1 of the session replaces the segment; later batches add to it."""
        return self._upload(audience_id, batch, replace_first=session.batch_seq == 1)

    def status(self, audience_id: str) -> AudienceStatus:
        segment = self.call("GET", path_of("crmdata", "segment", self.advertiser_id, audience_id))
        return AudienceStatus(
            state="active" if segment.get("CrmDataId") else "unknown",
            raw={k: segment[k] for k in ("CrmDataId", "SegmentName", "Region", "FirstPartyDataId") if k in segment},
        )

    def delete_audience(self, audience_id: str) -> None:
        self.call("DELETE", path_of("crmdata", "segment", self.advertiser_id, audience_id))

    # Drops ------------------------------------------------------------------------------
    def _upload(self, audience_id: str, batch: Sequence[PreparedMember], *, replace_first: bool) -> BatchResult:
        columns: dict[str, list[str]] = {pii: [] for _, pii in PII_TYPES}
        invalid = 0
        eu = self.region == "EU"
        phones_held = 0
        for member in batch:
            usable = False
            for key, pii in PII_TYPES:
                if key == "phone" and eu:
                    phones_held += bool(member.get(key))
                    continue  # TTD takes no phone numbers for EU segments
                value = member.get(key)
                if value and _is_b64_sha256(value):
                    columns[pii].append(value)
                    usable = True
            if not usable:
                invalid += 1
        messages: list[str] = []
        if invalid:
            messages.append(f"{invalid} of {len(batch)} people had no base64 SHA-256 email or phone and were skipped.")
        if phones_held:
            messages.append(f"{phones_held} people's phone numbers were not sent: The Trade Desk takes no phone "
                            "numbers in EU (EUID) segments.")
        mode = "Replace" if replace_first else "Add"
        if replace_first and not any(columns.values()):
            # Replacing with nobody still has to empty the segment: one empty Replace drop.
            columns = {PII_TYPES[0][1]: []}
        for pii, values in columns.items():
            if not values and mode != "Replace":
                continue
            self._drop(audience_id, pii, mode, values)
            mode = "Add"  # only the first drop of a replace replaces
        return BatchResult(received=len(batch), invalid=invalid, messages=tuple(messages))

    def _drop(self, audience_id: str, pii_type: str, mode: str, values: list[str]) -> None:
        path = path_of("crmdata", "segment", self.advertiser_id, audience_id)
        answer = self.call("POST", path, json={"PiiType": pii_type, "MergeMode": mode})
        url = str(answer.get("Url") or "")
        scheme = urlsplit(url).scheme
        # Identifiers only ever go over TLS, unless the API itself is a plain-HTTP local fake.
        if not url or (scheme != "https" and not (scheme == "http" and self.base_url.startswith("http://"))):
            raise PermanentError(f"{self.name}: the drop request returned no usable upload URL.")
        body = "".join(f"{value}\n" for value in values).encode("ascii")
        response = send(
            self.drops, "PUT", url, platform=self.name, data=body, headers={"Content-Type": "text/plain"}
        )
        # The storage answers XML errors; its status family is what matters. An expired pre-signed URL is 403:
        # that is not the connection's fault, so a refused drop is retried with a new one.
        if response.status_code in (401, 403):
            raise TransientError(f"{self.name}: the upload URL was refused (HTTP {response.status_code}); "
                                 "the batch will be sent again with a new one.", code=response.status_code)
        raise_for_status(
            response, platform=self.name, message=f"the data drop was refused (HTTP {response.status_code})"
        )


def _ttd_message(response: requests.Response) -> str:
    """TTD's error text: ``Message`` plus the first ``ErrorDetails`` reasons, when there are any."""
    text = error_message(response, "Message", "message")
    try:
        details = response.json().get("ErrorDetails")
    except (ValueError, AttributeError):
        details = None
    if isinstance(details, list):
        reasons = []
        for item in details[:3]:
            if isinstance(item, dict):
                prop = item.get("Property") or ""
                why = "; ".join(str(r) for r in item.get("Reasons") or [] if r)
                if why:
                    reasons.append(f"{prop}: {why}" if prop else why)
        if reasons:
            text = f"{text} ({' | '.join(reasons)})"
    return text
