"""Admin for syncs and runs (operators): read-mostly; runs are changed only through the engine's services."""

from __future__ import annotations

from django.contrib import admin, messages

from syncs import runs
from syncs.models import Sync, SyncBatch, SyncRun


@admin.register(Sync)
class SyncAdmin(admin.ModelAdmin):
    list_display = ("id", "audience", "connection", "mode", "schedule", "platform_audience_id", "owner", "created_at")
    list_filter = ("mode", "schedule", "connection__platform")
    search_fields = ("audience__name", "connection__label", "owner__username", "platform_audience_id")
    list_select_related = ("audience", "connection__platform", "owner")
    raw_id_fields = ("audience", "connection", "owner", "periodic_task")
    readonly_fields = ("platform_audience_id", "periodic_task", "created_at", "updated_at")


class SyncBatchInline(admin.TabularInline):
    model = SyncBatch
    extra = 0
    can_delete = False
    fields = ("seq", "kind", "status", "size", "attempts", "error_message", "sent_at")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "sync", "status", "trigger", "done_batches", "total_batches", "sent", "removed",
                    "match_rate", "created_at", "heartbeat_at")
    list_filter = ("status", "trigger", "sync__connection__platform")
    list_select_related = ("sync__audience", "sync__connection__platform")
    search_fields = ("sync__audience__name", "sync__connection__label")
    inlines = [SyncBatchInline]
    actions = ["resume_runs", "cancel_runs"]
    readonly_fields = [f.name for f in SyncRun._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Resume the selected failed runs")
    def resume_runs(self, request, queryset):
        resumed = 0
        for run in queryset.select_related("sync__audience"):
            if runs.can_resume(run):
                runs.resume_run(run=run)
                resumed += 1
        messages.info(request, f"{resumed} run(s) resumed.")

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            runs.cancel_run(run=run)
        messages.info(request, "Cancellation requested.")
