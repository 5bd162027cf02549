from django.urls import path

from audiences import sync_views, views

urlpatterns = [
    # --- audiences and imports (audiences/views.py) ---
    path("", views.audience_list, name="audience_list"),
    path("new/", views.audience_create, name="audience_create"),
    path("<int:audience_pk>/", views.audience_detail, name="audience_detail"),
    path("<int:audience_pk>/import/", views.audience_import, name="audience_import"),
    path("<int:audience_pk>/delete/", views.audience_delete, name="audience_delete"),
    path("imports/<int:import_pk>/mapping/", views.import_mapping, name="import_mapping"),
    path("imports/<int:import_pk>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:import_pk>/rejected-rows.csv", views.import_rejections_csv, name="import_rejections_csv"),
    # --- end audiences and imports ---
    # --- syncs and runs (audiences/sync_views.py) ---
    path("<int:audience_pk>/syncs/add/", sync_views.sync_create, name="sync_create"),
    path("syncs/<int:sync_pk>/run/", sync_views.sync_run_now, name="sync_run_now"),
    path("syncs/<int:sync_pk>/update/", sync_views.sync_update, name="sync_update"),
    path("syncs/<int:sync_pk>/delete/", sync_views.sync_delete, name="sync_delete"),
    path("runs/<int:run_pk>/", sync_views.sync_run_detail, name="sync_run_detail"),
    path("runs/<int:run_pk>/progress/", sync_views.sync_run_progress, name="sync_run_progress"),
    path("runs/<int:run_pk>/cancel/", sync_views.sync_run_cancel, name="sync_run_cancel"),
    path("runs/<int:run_pk>/resume/", sync_views.sync_run_resume, name="sync_run_resume"),
    # --- end syncs and runs ---
]
