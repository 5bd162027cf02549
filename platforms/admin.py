from django.contrib import admin

from platforms.models import Platform


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "active", "is_partner_integration", "docs_url")
    list_editable = ("active",)
    list_filter = ("active", "is_partner_integration")
    readonly_fields = ("code",)

    def has_add_permission(self, request):
        # Rows are seeded by a migration; a platform without an adapter cannot work.
        return False

    def has_delete_permission(self, request, obj=None):
        return False
