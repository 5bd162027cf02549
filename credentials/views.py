from django.shortcuts import render
from django.views.decorators.http import require_GET

from platforms.models import Platform


@require_GET
def platform_list(request):
    return render(request, "credentials/platform_list.html", {"platforms": Platform.objects.filter(active=True)})
