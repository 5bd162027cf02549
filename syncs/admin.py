"""Admin for syncs and runs (operators): read-mostly; runs are changed only through the engine's services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from syncs import runs, services
from syncs.models import PlatformRequest, Sync, SyncBatch, SyncRun


class SyncAdminForm(forms.ModelForm):
    """The model refuses a sync whose audience, connection and owner belong to different users (Sync.clean); a
    new connection for a sync that has a platform audience needs the operator to confirm what that means."""

    confirm_new_connection = forms.BooleanField(
        required=False, label="Yes, change the connection",
        help_text="Needed when the sync already has an audience on its platform: the next run creates a new one "
                  "with the new connection and sends everyone again; the old one is left on its platform.")

    class Meta:
        model = Sync
        fields = ("owner", "audience", "connection", "mode", "schedule", "schedule_time", "schedule_weekday",
                  "schedule_timezone", "hold_threshold", "platform_audience_id", "confirmed_generation",
                  "periodic_task")

    def clean(self):
        cleaned = super().clean()
        sync = self.instance
        if sync.pk and "connection" in self.changed_data and cleaned.get("connection") is not None:
            original = Sync.objects.get(pk=sync.pk)
            knows = bool(original.platform_audience_id) or original.confirmed_members.exists()
            if knows and not cleaned.get("confirm_new_connection"):
                self.add_error("confirm_new_connection", services.CHANGE_CONNECTION_WARNING.format(
                    platform=original.connection.platform.name,
                    audience_id=original.platform_audience_id or "not named yet"))
        return cleaned


@admin.register(Sync)
class SyncAdmin(admin.ModelAdmin):
    form = SyncAdminForm
    list_display = ("id", "audience", "connection", "mode", "schedule", "platform_audience_id", "owner", "created_at")
    list_filter = ("mode", "schedule", "connection__platform")
    search_fields = ("audience__name", "connection__label", "owner__username", "platform_audience_id")
    list_select_related = ("audience", "connection__platform", "owner")
    raw_id_fields = ("audience", "connection", "owner", "periodic_task")
    readonly_fields = ("platform_audience_id", "confirmed_generation", "periodic_task", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        if change and "connection" in form.changed_data:
            connection = obj.connection
            obj.connection_id = Sync.objects.values_list("connection_id", flat=True).get(pk=obj.pk)
            super().save_model(request, obj, form, change)  # the other fields first, with the old connection
            try:
                services.change_connection(sync=Sync.objects.get(pk=obj.pk), connection=connection,
                                           confirmed=form.cleaned_data.get("confirm_new_connection", False))
            except services.SyncError as exc:
                messages.error(request, exc.message)
            else:
                messages.warning(request, "The sync now sends to the new connection; its platform audience was "
                                          "forgotten and the next run starts a new one.")
            return
        super().save_model(request, obj, form, change)


class SyncBatchInline(admin.TabularInline):
    model = SyncBatch
    extra = 0
    can_delete = False
    fields = ("seq", "kind", "status", "size", "attempts", "error_message", "sent_at")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class PlatformRequestInline(SyncBatchInline):
    """The platform's reports on the run's requests (syncs.platform_reports)."""

    model = PlatformRequest
    fields = ("request_id", "kind", "sent_at", "checks", "next_check_at", "done", "rejected", "report")
    readonly_fields = fields


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "sync", "status", "trigger", "done_batches", "total_batches", "sent", "removed",
                    "match_rate", "created_at", "heartbeat_at")
    list_filter = ("status", "trigger", "sync__connection__platform")
    list_select_related = ("sync__audience", "sync__connection__platform")
    search_fields = ("sync__audience__name", "sync__connection__label")
    inlines = [SyncBatchInline, PlatformRequestInline]
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
