"""Per-platform credential forms: the fields each platform needs, validated server-side.

Identifiers are normalised here (``act_`` prefix for Meta, dashes stripped from Google
customer ids) so adapters can rely on one format.
"""

import re

from django import forms

from platforms.adapters.base import CredentialsForm, SecretInput


def _digits_id(value: str, *, field: str, length: int | None = None) -> str:
    cleaned = re.sub(r"[\s-]", "", value or "")
    if not cleaned.isdigit():
        raise forms.ValidationError(f"{field} must contain digits only (dashes and spaces are fine).")
    if length and len(cleaned) != length:
        raise forms.ValidationError(f"{field} must have exactly {length} digits; this one has {len(cleaned)}.")
    return cleaned


class MetaCredentialsForm(CredentialsForm):
    secret_fields = ("app_secret", "access_token")
    help_steps = (
        "Open Meta for Developers → My Apps and pick (or create) a Business app; Settings → Basic shows the "
        "App ID and App Secret.",
        "In Business Settings → Users → System users, generate a token for the app with the ads_management "
        "permission, and assign the system user to the ad account.",
        "The ad account id is in Ads Manager's account menu (act_ followed by digits; digits alone are fine).",
        "Accept the Custom Audience terms for the ad account once (Meta refuses uploads until you do).",
    )

    app_id = forms.CharField(label="App ID", max_length=32)
    app_secret = forms.CharField(label="App secret", max_length=128, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=1024, widget=SecretInput())
    ad_account_id = forms.CharField(label="Ad account ID", max_length=40, help_text="act_1234567890 or 1234567890")

    def clean_app_id(self):
        return _digits_id(self.cleaned_data["app_id"], field="The App ID")

    def clean_ad_account_id(self):
        value = self.cleaned_data["ad_account_id"].strip()
        digits = value[4:] if value.lower().startswith("act_") else value
        if not digits.isdigit():
            raise forms.ValidationError("An ad account id is act_ followed by digits, e.g. act_1234567890.")
        return f"act_{digits}"


class GoogleAdsCredentialsForm(CredentialsForm):
    secret_fields = ("client_secret", "developer_token", "refresh_token")
    help_steps = (
        "Only for accounts Google still allowlists for Customer Match in the Google Ads API (those that uploaded "
        "between October 2025 and March 2026). Every other account: use \"Google (Data Manager API)\".",
        "In Google Cloud Console → APIs & Services → Credentials, create an OAuth client (Desktop or Web): it "
        "gives the client ID and client secret. Enable the Google Ads API for the project.",
        "A developer token is optional since Google's sunset of developer tokens (September 2026); give it only if "
        "your setup still uses one (Google Ads manager account → Tools → API Center).",
        "Generate a refresh token for a user with access to the account (the OAuth playground or "
        "google-ads' generate_user_credentials example), with the https://www.googleapis.com/auth/adwords scope.",
        "The customer id is the 10-digit number at the top of Google Ads (123-456-7890). If you reach the "
        "account through a manager account, give the manager's id too.",
        "Accept the Customer Match terms in Google Ads (Tools → Audience manager) before the first upload.",
    )

    # No GRANTED default: the marketer states what their users consented to (EU user consent policy).
    CONSENT_CHOICES = [("", "— choose —"), ("GRANTED", "Granted"), ("DENIED", "Denied"),
                       ("UNSPECIFIED", "Not specified")]

    client_id = forms.CharField(label="OAuth client ID", max_length=200)
    client_secret = forms.CharField(label="OAuth client secret", max_length=200, widget=SecretInput())
    developer_token = forms.CharField(label="Developer token (optional)", max_length=100, required=False,
                                      widget=SecretInput())
    refresh_token = forms.CharField(label="Refresh token", max_length=1024, widget=SecretInput())
    customer_id = forms.CharField(label="Customer ID", max_length=20, help_text="10 digits, e.g. 123-456-7890")
    login_customer_id = forms.CharField(
        label="Manager account ID", max_length=20, required=False, help_text="Only when access goes through a manager."
    )
    consent_ad_user_data = forms.ChoiceField(
        label="Consent: ad user data", choices=CONSENT_CHOICES,
        help_text="Whether your users consented to sending their data to Google for advertising (EU user consent "
        "policy; required for EEA users).",
    )
    consent_ad_personalization = forms.ChoiceField(
        label="Consent: ad personalization", choices=CONSENT_CHOICES,
        help_text="Whether your users consented to personalised advertising.",
    )

    def clean_customer_id(self):
        return _digits_id(self.cleaned_data["customer_id"], field="The customer ID", length=10)

    def clean_login_customer_id(self):
        value = self.cleaned_data.get("login_customer_id", "")
        return _digits_id(value, field="The manager account ID", length=10) if value.strip() else ""


class LinkedInCredentialsForm(CredentialsForm):
    secret_fields = ("client_secret", "access_token")
    help_steps = (
        "In the LinkedIn Developer Portal, open your app (it needs the Advertising API product with Matched "
        "Audiences access); Auth shows the client ID and client secret.",
        "Generate an access token for a member with the rw_ads and rw_dmp_segments scopes (OAuth 2.0 tools). "
        "Tokens last 60 days: we re-check it daily and tell you before uploads fail.",
        "The ad account id is the number in Campaign Manager's URL (…/accounts/508123456/…).",
    )

    client_id = forms.CharField(label="Client ID", max_length=100)
    client_secret = forms.CharField(label="Client secret", max_length=200, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=2048, widget=SecretInput())
    ad_account_id = forms.CharField(
        label="Ad account ID", max_length=60,
        help_text="Digits, e.g. 508123456 (the urn:li:sponsoredAccount: form is fine)",
    )

    def clean_ad_account_id(self):
        value = self.cleaned_data["ad_account_id"].strip().removeprefix("urn:li:sponsoredAccount:")
        return _digits_id(value, field="The ad account ID")


class TikTokCredentialsForm(CredentialsForm):
    secret_fields = ("app_secret", "access_token")
    help_steps = (
        "In TikTok for Business Developers → My Apps, open your app: the basic information shows the App ID "
        "and Secret.",
        "Authorise the app for your advertiser account; the long-term access token is returned by the "
        "oauth2/access_token step (or shown in the app's advertiser list).",
        "The advertiser id is in TikTok Ads Manager's account menu (a long number).",
    )

    app_id = forms.CharField(label="App ID", max_length=40)
    app_secret = forms.CharField(label="Secret", max_length=200, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=1024, widget=SecretInput())
    advertiser_id = forms.CharField(label="Advertiser ID", max_length=40)

    def clean_advertiser_id(self):
        return _digits_id(self.cleaned_data["advertiser_id"], field="The advertiser ID")


class TradeDeskCredentialsForm(CredentialsForm):
    secret_fields = ("api_token",)
    help_steps = (
        "Your partner id and advertiser id are shown in The Trade Desk platform (Advertiser → Settings).",
        "Ask your TTD account manager for API access, then create a long-lived API token in the Developer "
        "Portal (Manage API tokens). It is sent as the TTD-Auth header.",
        "First-party CRM data must be enabled for the advertiser.",
    )

    partner_id = forms.CharField(label="Partner ID", max_length=40)
    api_token = forms.CharField(label="API token", max_length=2048, widget=SecretInput())
    advertiser_id = forms.CharField(label="Advertiser ID", max_length=40)

    def clean_partner_id(self):
        return _alnum_id(self.cleaned_data["partner_id"], "The partner ID")

    def clean_advertiser_id(self):
        return _alnum_id(self.cleaned_data["advertiser_id"], "The advertiser ID")


def _alnum_id(value: str, field: str) -> str:
    value = (value or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{3,40}", value):
        raise forms.ValidationError(f"{field} is 3 to 40 letters and digits, e.g. a1b2c3d.")
    return value


class NetflixCredentialsForm(CredentialsForm):
    secret_fields = ("api_key", "api_secret")
    help_steps = (
        "Netflix has no public audience API: this is a partner integration. Your Netflix ads partner gives you "
        "a partner id, an API key (sent with every request) and an API secret (signs every request).",
        "The endpoint base URL is the HTTPS address of the partner's audience endpoint.",
        "See the partner contract for what is sent and how requests are signed.",
    )

    partner_id = forms.CharField(label="Partner ID", max_length=64)
    api_key = forms.CharField(label="API key", max_length=256, widget=SecretInput())
    api_secret = forms.CharField(label="API secret", max_length=256, widget=SecretInput())
    base_url = forms.URLField(label="Endpoint base URL", max_length=300, assume_scheme="https")

    def clean_base_url(self):
        from activation_manager import egress

        try:  # https only, resolved now to public addresses only (the same guard runs on every request)
            return egress.check_url(self.cleaned_data["base_url"]).rstrip("/")
        except egress.EgressRefused as exc:
            raise forms.ValidationError(exc.message) from None
