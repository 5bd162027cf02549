from django.urls import path

from audiences import views

urlpatterns = [
    path("", views.audience_list, name="audience_list"),
    path("new/", views.audience_create, name="audience_create"),
    path("<int:audience_pk>/", views.audience_detail, name="audience_detail"),
    path("<int:audience_pk>/import/", views.audience_import, name="audience_import"),
    path("<int:audience_pk>/delete/", views.audience_delete, name="audience_delete"),
    path("<int:audience_pk>/delete/confirm/", views.audience_confirm_delete, name="audience_confirm_delete"),
    path("imports/<int:import_pk>/mapping/", views.import_mapping, name="import_mapping"),
    path("imports/<int:import_pk>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:import_pk>/rejected-rows.csv", views.import_rejections_csv, name="import_rejections_csv"),
]
