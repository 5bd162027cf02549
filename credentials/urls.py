from django.urls import path

from credentials import views

urlpatterns = [
    path("", views.platform_list, name="platform_list"),
]
