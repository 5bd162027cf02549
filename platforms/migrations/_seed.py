"""The Platform rows as migration 0001 seeded them (history; the adapter registry owns the rows now:
platforms.adapters.registry.sync_platforms, run after every migrate)."""

PLATFORMS = [
    ("meta", "Meta", "https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences", False),
    ("google_ads", "Google Ads API (allowlisted accounts)", "https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match", False),
    ("google_dm", "Google (Data Manager API)", "https://developers.google.com/data-manager/api/devguides/audiences/google-ads/customer-match", False),
    ("linkedin", "LinkedIn", "https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/matched-audiences", False),
    ("tiktok", "TikTok", "https://business-api.tiktok.com/portal/docs?id=1739566528222210", False),
    ("ttd", "The Trade Desk", "https://partner.thetradedesk.com/v3/portal/data/doc/DataFirstPartyCrm", False),
    ("netflix", "Netflix (partner)", "/platforms/netflix/partner-contract/", True),
]


def seed_platforms(apps, schema_editor):
    Platform = apps.get_model("platforms", "Platform")
    for code, name, docs_url, partner in PLATFORMS:
        Platform.objects.update_or_create(
            code=code, defaults={"name": name, "docs_url": docs_url, "active": True, "is_partner_integration": partner}
        )
