from django.urls import path

from syncs import views

# Mounted under /audiences/ (a sync belongs to an audience), as before the syncs app existed.
urlpatterns = [
    path("<int:audience_pk>/syncs/add/", views.sync_create, name="sync_create"),
    path("syncs/<int:sync_pk>/run/", views.sync_run_now, name="sync_run_now"),
    path("syncs/<int:sync_pk>/preview/", views.sync_preview, name="sync_preview"),
    path("syncs/<int:sync_pk>/update/", views.sync_update, name="sync_update"),
    path("syncs/<int:sync_pk>/delete/", views.sync_delete, name="sync_delete"),
    path("runs/<int:run_pk>/", views.sync_run_detail, name="sync_run_detail"),
    path("runs/<int:run_pk>/progress/", views.sync_run_progress, name="sync_run_progress"),
    path("runs/<int:run_pk>/reports/", views.sync_run_reports, name="sync_run_reports"),
    path("runs/<int:run_pk>/cancel/", views.sync_run_cancel, name="sync_run_cancel"),
    path("runs/<int:run_pk>/confirm/", views.sync_run_confirm, name="sync_run_confirm"),
    path("runs/<int:run_pk>/resume/", views.sync_run_resume, name="sync_run_resume"),
]
