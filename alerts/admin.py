"""Operators see incidents and deliveries (read-only; no address or URL is stored on them)."""

from django.contrib import admin

from alerts.models import AlertSettings, Delivery, Incident


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    readonly_fields = ("channel", "status", "attempts", "error", "sent_at", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "subject", "owner", "occurrences", "resolved_at")
    list_filter = ("event",)
    search_fields = ("subject", "owner__username")
    readonly_fields = ("owner", "event", "key", "subject", "body", "path", "occurrences", "created_at",
                       "last_seen_at", "resolved_at")
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    list_display = ("owner", "email_enabled", "webhook_enabled", "updated_at")
    # The webhook URL is a credential of the user's workspace (whoever has it can post there): not shown.
    exclude = ("webhook_url",)
    readonly_fields = ("owner", "email_enabled", "email", "webhook_enabled", "events", "updated_at")

    def has_add_permission(self, request):
        return False
