"""Sign-in with the platform ("Continue with Meta"): the flow around each adapter's OAuth facts.

1. ``start``: a fresh ``state`` (and a PKCE verifier where the platform takes PKCE) kept in the signed-in user's
   session, encrypted with the credentials cipher and tied to the user and the platform; the answer is the
   platform's consent screen.
2. ``callback``: the state must be one this session started, for this user and platform, less than
   OAUTH_FLOW_SECONDS old, and it is used once. A refusal (``error=access_denied``), an expired or unknown state and
   a token without the scopes a connection needs are clear messages. The code is exchanged (the adapter's
   ``oauth_exchange``) and the ad accounts the person may manage are listed (``oauth_accounts``); the tokens wait in
   the session, encrypted, for the person to pick an account.
3. ``finish``: the chosen account and the form's remaining fields (Google's consent choices ...) go through the
   platform's own credential form and then ``services.connect`` — tested with the platform, stored encrypted, the
   event recorded — exactly as a pasted token would; or ``services.update_connection`` when signing in again for an
   existing connection.

No token, code or verifier is ever rendered, logged or put in a URL of ours.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from django import forms
from django.conf import settings
from django.urls import reverse

from credentials import services
from credentials.fields import credentials_cipher
from credentials.models import Connection
from credentials.scrub import scrub
from platforms.adapters import oauth as oauth_flow
from platforms.adapters.base import OAuthAccount, OAuthGrant, TokenExpiry
from platforms.errors import PlatformError

logger = logging.getLogger(__name__)

FLOWS_KEY = "oauth_flows"
PENDING_KEY = "oauth_pending"
MAX_FLOWS = 5


class SignInFailed(Exception):
    """The sign-in cannot go on; ``message`` is safe to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def adapter_class(code: str):
    from platforms.adapters import get_adapter_class

    return get_adapter_class(code)


def available(code: str) -> bool:
    """The platform has a sign-in and the operator configured its app."""
    try:
        adapter = adapter_class(code)
    except LookupError:
        return False
    return adapter.oauth is not None and adapter.oauth_client() is not None


def _seal(payload: dict) -> str:
    return credentials_cipher().encrypt(json.dumps(payload).encode()).decode()


def _open(token: str) -> dict | None:
    try:
        return json.loads(credentials_cipher().decrypt(token.encode(), ttl=settings.OAUTH_FLOW_SECONDS))
    except (InvalidToken, ValueError, AttributeError):
        return None


def callback_url(request, code: str) -> str:
    """The redirect URI registered with the platform: this site's callback for the platform."""
    return request.build_absolute_uri(reverse("oauth_callback", args=[code]))


# 1. Start ----------------------------------------------------------------------------------------------------

def start(request, *, platform, connection: Connection | None = None) -> str:
    """The platform's consent screen URL for a new sign-in by the signed-in user."""
    adapter = adapter_class(platform.code)
    client = adapter.oauth_client() if adapter.oauth is not None else None
    if client is None:
        raise SignInFailed(f"Signing in with {platform.name} is not set up on this server; enter the credentials "
                           "instead.")
    state = oauth_flow.new_state()
    verifier = oauth_flow.new_code_verifier() if adapter.oauth.pkce else None
    redirect_uri = callback_url(request, platform.code)
    flows = {key: value for key, value in (request.session.get(FLOWS_KEY) or {}).items() if _open(value)}
    while len(flows) >= MAX_FLOWS:
        flows.pop(next(iter(flows)))
    flows[state] = _seal({"user": request.user.pk, "platform": platform.code, "verifier": verifier,
                          "redirect_uri": redirect_uri, "connection": connection.pk if connection else None})
    request.session[FLOWS_KEY] = flows
    logger.info("sign-in with %s started (user %s)", platform.code, request.user.pk)
    return adapter.oauth_authorization_url(client=client, redirect_uri=redirect_uri, state=state,
                                           code_verifier=verifier)


# 2. Callback -------------------------------------------------------------------------------------------------

def _take_flow(request, platform, state: str) -> dict:
    flows = dict(request.session.get(FLOWS_KEY) or {})
    sealed = flows.pop(state, None) if state else None  # used once, whatever happens next
    request.session[FLOWS_KEY] = flows
    flow = _open(sealed) if sealed else None
    if flow is None or flow.get("user") != request.user.pk or flow.get("platform") != platform.code:
        raise SignInFailed(f"This sign-in with {platform.name} expired or was not started here (it must be finished "
                           f"within {settings.OAUTH_FLOW_SECONDS // 60} minutes, in the browser that started it). "
                           "Nothing was connected: start again.")
    return flow


def callback(request, *, platform) -> None:
    """The platform sent the person back: check the state, exchange the code, list the accounts, and keep it all
    (encrypted, in the session) for the account choice."""
    adapter = adapter_class(platform.code)
    params = request.GET
    flow = _take_flow(request, platform, params.get("state", ""))
    error = params.get("error")
    if error:
        if error == "access_denied":
            raise SignInFailed(f"The sign-in with {platform.name} was cancelled or the permissions were refused: "
                               "nothing was connected.")
        detail = str(params.get("error_description") or "")[:200]
        raise SignInFailed(oauth_flow.refusal(platform.name, error[:60], detail) + " Nothing was connected.")
    code = params.get(adapter.oauth.code_param, "")
    if not code:
        raise SignInFailed(f"{platform.name} sent no authorization code back. Nothing was connected: start again.")
    client = adapter.oauth_client()
    if client is None:
        raise SignInFailed(f"Signing in with {platform.name} is not set up on this server any more.")
    grant = None
    try:
        grant = adapter.oauth_exchange(code=code, redirect_uri=flow["redirect_uri"],
                                       code_verifier=flow.get("verifier"), client=client)
        missing = oauth_flow.missing_scopes(adapter.oauth, grant.scopes)
        if missing:
            them = "that permission" if len(missing) == 1 else "those permissions"
            raise SignInFailed(f"{platform.name} granted access without {', '.join(missing)}, which syncing "
                               f"audiences needs. Sign in again and keep {them} ticked. Nothing was connected.")
        accounts = adapter.oauth_accounts(grant=grant, client=client)
    except PlatformError as exc:
        secrets = [code, client[1], *(grant.secrets.values() if grant else [])]
        raise SignInFailed(scrub(exc.message, secrets) + " Nothing was connected.") from None
    pending = dict(request.session.get(PENDING_KEY) or {})
    pending[platform.code] = _seal({
        "user": request.user.pk, "secrets": grant.secrets, "scopes": sorted(grant.scopes), "details": grant.details,
        "expiry": _expiry_out(grant.expiry), "accounts": [[a.id, a.name, a.detail] for a in accounts],
        "connection": flow.get("connection"),
    })
    request.session[PENDING_KEY] = pending
    logger.info("sign-in with %s: %s account(s) to choose from (user %s)", platform.code, len(accounts),
                request.user.pk)


def _expiry_out(expiry: TokenExpiry | None) -> dict | None:
    if expiry is None or expiry.expires_at is None:
        return None
    return {"at": expiry.expires_at.timestamp(), "what": expiry.what, "renewable": expiry.renewable}


def _expiry_in(value: dict | None) -> TokenExpiry | None:
    if not value:
        return None
    return TokenExpiry(dt.datetime.fromtimestamp(value["at"], tz=dt.UTC), what=value["what"],
                       renewable=value["renewable"], source="token response")


# 3. Choose the account, connect --------------------------------------------------------------------------------

@dataclass
class PendingSignIn:
    grant: OAuthGrant
    accounts: list[OAuthAccount]
    connection: Connection | None


def pending(request, *, platform) -> PendingSignIn | None:
    """The signed-in user's sign-in waiting for an account choice on this platform, if any (and still fresh)."""
    sealed = (request.session.get(PENDING_KEY) or {}).get(platform.code)
    payload = _open(sealed) if sealed else None
    if payload is None or payload.get("user") != request.user.pk:
        return None
    connection = None
    if payload.get("connection"):
        connection = Connection.objects.filter(owner=request.user, pk=payload["connection"]).first()
    grant = OAuthGrant(secrets=payload["secrets"], scopes=frozenset(payload["scopes"]), details=payload["details"],
                       expiry=_expiry_in(payload.get("expiry")))
    return PendingSignIn(grant=grant, accounts=[OAuthAccount(*row) for row in payload["accounts"]],
                         connection=connection)


def forget(request, *, platform) -> None:
    entries = dict(request.session.get(PENDING_KEY) or {})
    if entries.pop(platform.code, None) is not None:
        request.session[PENDING_KEY] = entries


def _provided_fields(adapter, grant: OAuthGrant, client) -> set[str]:
    return set(adapter.oauth_credentials(grant=grant, client=client, account_id="0"))


def account_form(platform, signin: PendingSignIn, data=None):
    """The form of the last step: a label, the account (a choice, or typed when the platform lists none) and the
    platform form's own fields the sign-in does not fill (Google's consent choices and terms)."""
    adapter = adapter_class(platform.code)
    credentials_form = adapter.credentials_form
    provided = _provided_fields(adapter, signin.grant, adapter.oauth_client())
    account_field = credentials_form.base_fields[adapter.account_field]
    fields = {"label": forms.CharField(max_length=100, label="Label", help_text="Your name for this account.")}
    if signin.accounts:
        choices = [(a.id, f"{a.name} ({a.id})" + (f" — {a.detail}" if a.detail else "")) for a in signin.accounts]
        fields["account"] = forms.ChoiceField(label=str(account_field.label), choices=choices,
                                              widget=forms.RadioSelect)
    else:
        fields["account"] = forms.CharField(label=str(account_field.label), max_length=60,
                                            help_text=account_field.help_text or "")
    for name, form_field in credentials_form.base_fields.items():
        if name in provided or name in credentials_form.secret_fields or name in ("label", adapter.account_field):
            continue
        fields[name] = form_field
    form_class = type("OAuthAccountForm", (forms.Form,), fields)
    initial = {}
    if signin.connection is not None:
        initial = {"label": signin.connection.label, "account": signin.connection.config.get(adapter.account_field),
                   **{k: v for k, v in signin.connection.config.items() if k in fields}}
    elif len(signin.accounts) == 1:
        initial = {"account": signin.accounts[0].id, "label": signin.accounts[0].name[:100]}
    return form_class(data, initial=initial, auto_id=f"{platform.code}-signin-%s")


def finish(request, *, platform, form) -> Connection | None:
    """Connect the chosen account (tested, stored encrypted, recorded); None with the form carrying the errors."""
    signin = pending(request, platform=platform)
    if signin is None:
        raise SignInFailed(f"This sign-in with {platform.name} expired: start again.")
    if not form.is_valid():
        return None
    adapter = adapter_class(platform.code)
    client = adapter.oauth_client()
    if client is None:
        raise SignInFailed(f"Signing in with {platform.name} is not set up on this server any more.")
    values = {name: value for name, value in form.cleaned_data.items() if name not in ("account",)}
    credentials = adapter.oauth_credentials(grant=signin.grant, client=client, account_id=form.cleaned_data["account"])
    data = {**{k: _form_value(v) for k, v in values.items()}, **credentials}
    credentials_form = adapter.credentials_form(data, editing=False)
    if not credentials_form.is_valid():
        for name, errors in credentials_form.errors.items():
            target = "account" if name == adapter.account_field else (name if name in form.fields else None)
            for error in errors:
                form.add_error(target, error)
        return None
    label, config, secrets = credentials_form.split()
    # Secrets the form has no field for (LinkedIn's refresh token) are stored too.
    secrets.update({k: v for k, v in signin.grant.secrets.items() if k not in credentials_form.fields and v})
    try:
        if signin.connection is not None:
            connection = services.update_connection(
                connection=signin.connection, label=label, config=config, secrets=secrets, actor=request.user,
                auth_method=Connection.AuthMethod.OAUTH, expiry=signin.grant.expiry)
        else:
            connection = services.connect(owner=request.user, platform=platform, label=label, config=config,
                                          secrets=secrets, actor=request.user, auth_method=Connection.AuthMethod.OAUTH,
                                          expiry=signin.grant.expiry)
    except services.CredentialsRejected as exc:
        form.add_error("label" if exc.field == "label" else None, exc.message)
        return None
    forget(request, platform=platform)
    return connection


def _form_value(value):
    if value is True:
        return "on"
    if value in (False, None):
        return ""
    return str(value)
