from django.urls import path

from alerts import views

urlpatterns = [
    path("", views.alert_settings, name="alert_settings"),
    path("test/", views.alert_test, name="alert_test"),
]
