from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from activation_manager import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/login/", login_not_required(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("platforms/", include("credentials.urls")),
    path("audiences/", include("audiences.urls")),
    path("audiences/", include("syncs.urls")),
    path("alerts/", include("alerts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]

handler404 = "activation_manager.views.page_not_found"
handler500 = "activation_manager.views.server_error"
