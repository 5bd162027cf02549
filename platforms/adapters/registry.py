"""Platform code -> adapter class. The rest of the app asks here."""

from importlib import import_module

from platforms.errors import UnknownPlatform

ADAPTER_PATHS = {
    "meta": "platforms.adapters.meta.MetaAdapter",
    "google_ads": "platforms.adapters.google_ads.GoogleAdsAdapter",
    "google_dm": "platforms.adapters.google_datamanager.GoogleDataManagerAdapter",
    "linkedin": "platforms.adapters.linkedin.LinkedInAdapter",
    "tiktok": "platforms.adapters.tiktok.TikTokAdapter",
    "ttd": "platforms.adapters.ttd.TradeDeskAdapter",
    "netflix": "platforms.adapters.netflix.NetflixAdapter",
}


def get_adapter_class(code: str):
    try:
        path = ADAPTER_PATHS[code]
    except KeyError:
        raise UnknownPlatform(f"No adapter for platform {code!r}; known: {', '.join(sorted(ADAPTER_PATHS))}") from None
    module_path, class_name = path.rsplit(".", 1)
    return getattr(import_module(module_path), class_name)


def all_adapter_classes():
    return {code: get_adapter_class(code) for code in ADAPTER_PATHS}
