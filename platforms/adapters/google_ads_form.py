"""The Google Ads connection's credential form: the OAuth client, refresh token and optional developer token, the
customer (and manager) ids and the EU user consent the marketer states."""

from __future__ import annotations

from django import forms

from platforms.adapters.base import CredentialsForm, SecretInput
from platforms.forms import digits_id


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
        return digits_id(self.cleaned_data["customer_id"], field="The customer ID", length=10)

    def clean_login_customer_id(self):
        value = self.cleaned_data.get("login_customer_id", "")
        return digits_id(value, field="The manager account ID", length=10) if value.strip() else ""
