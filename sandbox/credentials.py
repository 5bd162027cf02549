"""Credentials that the bundled fake platforms accept in demo mode.

The demo fakes (``python -m sandbox.serve``, started by ``make run``) accept exactly these
values, so a newcomer can connect every platform without a real account; the connect form shows
them when DEMO_MODE is on. Anything else is refused the way the real platform refuses it.
None of these is a real secret.
"""

DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "meta": {
        "label": "Demo ad account",
        "app_id": "100200300",
        "app_secret": "demo-meta-app-secret",
        "access_token": "EAADemoAccessToken0001",
        "ad_account_id": "act_1234567890",
    },
    "google_ads": {
        "label": "Demo customer",
        "client_id": "demo-client.apps.googleusercontent.com",
        "client_secret": "demo-google-client-secret",
        "developer_token": "demo-developer-token",
        "refresh_token": "1//demo-refresh-token",
        "customer_id": "123-456-7890",
        "login_customer_id": "",
        "consent_ad_user_data": "GRANTED",
        "consent_ad_personalization": "GRANTED",
    },
    # Google through the Data Manager API: an OAuth client of its own (the fake OAuth endpoint knows it), no
    # developer token. The consent values are the demo marketer's explicit choice, not a default.
    "google_dm": {
        "label": "Demo customer (Data Manager)",
        "auth_method": "oauth",
        "client_id": "demo-datamanager-client.apps.googleusercontent.com",
        "client_secret": "demo-datamanager-client-secret",
        "refresh_token": "1//demo-datamanager-refresh-token",
        "service_account_key": "",
        "customer_id": "123-456-7890",
        "login_customer_id": "",
        "consent_ad_user_data": "GRANTED",
        "consent_ad_personalization": "GRANTED",
        "customer_match_terms": "on",
    },
    "linkedin": {
        "label": "Demo ad account",
        "client_id": "demo-linkedin-client",
        "client_secret": "demo-linkedin-secret",
        "access_token": "AQVdemo-linkedin-token",
        "ad_account_id": "508123456",
    },
    "tiktok": {
        "label": "Demo advertiser",
        "app_id": "7000000000000000001",
        "app_secret": "demo-tiktok-secret",
        "access_token": "demo-tiktok-access-token",
        "advertiser_id": "7100000000000000001",
    },
    "ttd": {
        "label": "Demo advertiser",
        "partner_id": "demopartner",
        "api_token": "demo-ttd-api-token",
        "advertiser_id": "demoadv1",
    },
    "netflix": {
        "label": "Demo partner endpoint",
        "partner_id": "demo-partner",
        "api_key": "demo-netflix-key-id",
        "api_secret": "demo-netflix-signing-secret",
        "base_url": "http://127.0.0.1:8765/netflix/v1",
    },
}

# The access token a fake treats as expired (to show the "wrong token" path in the demo).
EXPIRED_TOKEN = "expired-token"
