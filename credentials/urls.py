from django.urls import path

from credentials import views

urlpatterns = [
    path("", views.platform_list, name="platform_list"),
    path("<slug:platform_code>/partner-contract/", views.partner_contract, name="partner_contract"),
    path("<slug:platform_code>/card/", views.platform_card, name="platform_card"),
    path("<slug:platform_code>/connect/", views.connection_create, name="connection_create"),
    path("<slug:platform_code>/sign-in/", views.oauth_start, name="oauth_start"),
    path("<slug:platform_code>/sign-in/callback/", views.oauth_callback, name="oauth_callback"),
    path("<slug:platform_code>/sign-in/accounts/", views.oauth_accounts, name="oauth_accounts"),
    path("connections/<int:connection_pk>/", views.connection_detail, name="connection_detail"),
    path("connections/<int:connection_pk>/edit/", views.connection_edit, name="connection_edit"),
    path("connections/<int:connection_pk>/test/", views.connection_test, name="connection_test"),
    path("connections/<int:connection_pk>/disconnect/", views.connection_disconnect, name="connection_disconnect"),
    path("connections/<int:connection_pk>/delete/", views.connection_delete, name="connection_delete"),
]
