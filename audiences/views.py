from django.shortcuts import render
from django.views.decorators.http import require_GET

from audiences.models import Audience


@require_GET
def audience_list(request):
    return render(request, "audiences/audience_list.html", {"audiences": Audience.objects.filter(owner=request.user)})
