"""Operators' view of connections. The secrets field is never displayed or editable: only masked tails."""

from django.contrib import admin, messages
from django.utils.html import format_html_join

from credentials.models import Connection, ConnectionEvent
from credentials.selectors import connection_view


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ("label", "platform", "owner", "status", "expires_at", "last_validated_at", "updated_at")
    list_filter = ("platform", "status")
    search_fields = ("label", "owner__username", "owner__email")
    list_select_related = ("platform", "owner")
    exclude = ("secrets",)
    fields = ("owner", "platform", "label", "status", "auth_method", "config", "stored_secrets", "expires_at",
              "expiry_what", "expiry_renewable", "expiry_checked_at", "last_validated_at", "last_error", "created_at",
              "updated_at")
    readonly_fields = ("owner", "platform", "status", "auth_method", "config", "stored_secrets", "expires_at",
                       "expiry_what", "expiry_renewable", "expiry_checked_at", "last_validated_at", "last_error",
                       "created_at", "updated_at")
    actions = ("revalidate",)

    def has_add_permission(self, request):
        # A connection is created by testing its credentials with the platform: through the app only.
        return False

    @admin.display(description="Secrets (masked)")
    def stored_secrets(self, obj):
        tails = connection_view(obj).secret_tails
        if not tails:
            return "none stored"
        return format_html_join(", ", "{} {}", tails)

    @admin.action(description="Re-validate selected connections now (in the background)")
    def revalidate(self, request, queryset):
        from credentials.tasks import revalidate_connection

        ids = list(queryset.values_list("pk", flat=True))
        for pk in ids:
            revalidate_connection.delay(pk)
        self.message_user(request, f"Queued re-validation of {len(ids)} connection(s).", messages.SUCCESS)


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "connection_label", "owner", "actor", "message")
    list_filter = ("kind",)
    search_fields = ("connection_label", "owner__username", "message")
    list_select_related = ("owner", "actor")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
