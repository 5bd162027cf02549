"""Small template filters shared by the product's pages."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value):
    """ "just now" under a minute (Django's timesince says "0 minutes"), else "3 hours ago"; "" for None."""
    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"
