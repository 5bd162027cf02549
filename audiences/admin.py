from django.contrib import admin

from audiences import services
from audiences.models import Audience, ImportJob, PlatformDeletion, RejectedRow


class ImportJobInline(admin.TabularInline):
    model = ImportJob
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("created_at", "status", "original_filename", "rows_total", "rows_imported", "rows_rejected",
              "rows_duplicate")
    readonly_fields = fields


@admin.register(Audience)
class AudienceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "member_count", "default_country", "generation", "updated_at")
    list_filter = ("status", "default_country")
    search_fields = ("name", "owner__username")
    readonly_fields = ("generation", "member_count", "key_coverage", "created_at", "updated_at")
    list_select_related = ("owner",)
    inlines = [ImportJobInline]

    # Deleting goes through the app's own deletion: marked at once, rows purged by a task. Django's cascade
    # would delete (and its confirmation page list) every member inside the request.
    def get_deleted_objects(self, objs, request):
        audiences = list(objs)
        summary = [f"{audience} ({audience.member_count:,} members, removed in the background)"
                   for audience in audiences]
        return summary, {"audiences": len(audiences)}, set(), []

    def delete_model(self, request, obj):
        services.delete_audience(audience=obj)

    def delete_queryset(self, request, queryset):
        for audience in queryset.exclude(status=Audience.Status.DELETING):
            services.delete_audience(audience=audience)


class RejectedRowInline(admin.TabularInline):
    model = RejectedRow
    extra = 0
    can_delete = False
    fields = ("row_number", "column", "reason")
    readonly_fields = fields
    max_num = 0


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "audience", "owner", "status", "rows_total", "rows_imported", "rows_rejected",
                    "created_at", "heartbeat_at")
    list_filter = ("status",)
    search_fields = ("audience__name", "owner__username", "original_filename")
    list_select_related = ("audience", "owner")
    # Operators see counts and status; the stored file path and mapping are not editable here.
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    inlines = [RejectedRowInline]

    def has_add_permission(self, request):
        return False


@admin.register(PlatformDeletion)
class PlatformDeletionAdmin(admin.ModelAdmin):
    """What became of deleted audiences' copies on the platforms: read only (the deletion task writes them)."""

    list_display = ("audience_name", "destination", "status", "owner", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("audience_name", "destination", "owner__username", "platform_audience_id")
    list_select_related = ("owner",)
    readonly_fields = [f.name for f in PlatformDeletion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
