"""The Data Manager connection's credential form: an OAuth client and refresh token or a service-account key, the
customer (and manager) ids, the EU user consent the marketer states, the Customer Match terms."""

from __future__ import annotations

import json

from django import forms

from platforms.adapters.base import CredentialsForm, SecretInput
from platforms.forms import digits_id

EU_CONSENT_HELP = (
    "Google's EU user consent policy: for people in the European Economic Area (and the UK and Switzerland) you may "
    "send their data to Google for advertising only with their consent, and you must tell Google what they consented "
    "to. \"Ad user data\" is consent to send their data to Google for advertising; \"ad personalization\" is consent "
    "to personalised advertising (Customer Match targeting). Choose what your list's people actually agreed to: "
    "Google drops members whose consent is denied or missing where the policy requires it. Nothing is assumed."
)


class GoogleDataManagerCredentialsForm(CredentialsForm):
    """OAuth client + refresh token, or a service-account key; no developer token (the Data Manager has none)."""

    secret_fields = ("client_secret", "refresh_token", "service_account_key")
    help_steps = (
        "In Google Cloud Console, enable the Data Manager API for your project (APIs & Services → Library → "
        "\"Data Manager API\"). Its quota (300 requests a minute) is shared by everything that uses the project.",
        "Either create an OAuth client (APIs & Services → Credentials) and generate a refresh token for a Google "
        "Ads user with the https://www.googleapis.com/auth/datamanager scope, or create a service account, add its "
        "email as a user of the Google Ads account, and paste its JSON key.",
        "The customer id is the 10-digit number at the top of Google Ads (123-456-7890). If you reach the account "
        "through a manager account, give the manager's id too (Google calls it the login account).",
        "No developer token is needed.",
        "Accept the Customer Match terms in Google Ads (Tools → Shared library → Audience manager), then tick the "
        "box below.",
        EU_CONSENT_HELP,
    )

    AUTH_CHOICES = [("oauth", "OAuth client and refresh token"), ("service_account", "Service-account key")]
    # No initial value: the marketer must choose (EU user consent policy).
    CONSENT_CHOICES = [("", "— choose —"), ("GRANTED", "Granted"), ("DENIED", "Denied")]

    auth_method = forms.ChoiceField(label="Sign in with", choices=AUTH_CHOICES, initial="oauth")
    client_id = forms.CharField(label="OAuth client ID", max_length=200, required=False)
    client_secret = forms.CharField(label="OAuth client secret", max_length=200, required=False, widget=SecretInput())
    refresh_token = forms.CharField(label="Refresh token", max_length=1024, required=False, widget=SecretInput())
    service_account_key = forms.CharField(
        label="Service-account JSON key", max_length=8192, required=False,
        widget=SecretInput(),  # masked like every secret; pasted line breaks are whitespace to JSON
        help_text="Paste the whole JSON file Google Cloud gives you for the key.",
    )
    customer_id = forms.CharField(label="Customer ID", max_length=20, help_text="10 digits, e.g. 123-456-7890")
    login_customer_id = forms.CharField(
        label="Manager account ID", max_length=20, required=False,
        help_text="Only when access goes through a manager account (Google's login account).",
    )
    consent_ad_user_data = forms.ChoiceField(
        label="Consent: ad user data", choices=CONSENT_CHOICES,
        help_text="Did the people on your lists consent to their data being sent to Google for advertising? "
        + EU_CONSENT_HELP,
    )
    consent_ad_personalization = forms.ChoiceField(
        label="Consent: ad personalization", choices=CONSENT_CHOICES,
        help_text="Did they consent to personalised advertising? Required by Google's EU user consent policy for "
        "people in the EEA.",
    )
    customer_match_terms = forms.BooleanField(
        label="The Google Ads account has accepted the Customer Match terms", required=True,
        help_text="Sent to Google with every upload (Google refuses uploads until the terms are accepted).",
    )

    def clean_customer_id(self):
        return digits_id(self.cleaned_data["customer_id"], field="The customer ID", length=10)

    def clean_login_customer_id(self):
        value = self.cleaned_data.get("login_customer_id", "")
        return digits_id(value, field="The manager account ID", length=10) if value.strip() else ""

    def clean_service_account_key(self):
        value = (self.cleaned_data.get("service_account_key") or "").strip()
        if not value:
            return ""
        try:
            info = json.loads(value)
        except ValueError:
            raise forms.ValidationError("This is not a JSON key file (it does not parse as JSON).") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise forms.ValidationError("This JSON is not a service-account key (its \"type\" is not "
                                        "\"service_account\").")
        missing = [k for k in ("client_email", "private_key") if not info.get(k)]
        if missing:
            raise forms.ValidationError(f"The key has no {' or '.join(missing)}.")
        return value

    def clean(self):
        data = super().clean()
        method = data.get("auth_method")
        if method == "oauth":
            if not (data.get("client_id") or "").strip():
                self.add_error("client_id", "Give the OAuth client ID (or sign in with a service-account key).")
            if not self.editing:
                for name in ("client_secret", "refresh_token"):
                    if not data.get(name):
                        self.add_error(name, "Required when signing in with an OAuth client.")
        elif method == "service_account" and not self.editing and not data.get("service_account_key"):
            self.add_error("service_account_key", "Paste the service account's JSON key.")
        return data
