from django.urls import path

from audiences import views

urlpatterns = [
    # --- audiences and imports (audiences/views.py) ---
    path("", views.audience_list, name="audience_list"),
    # --- end audiences and imports ---
    # --- syncs and runs (audiences/sync_views.py) ---
    # --- end syncs and runs ---
]
