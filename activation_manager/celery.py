import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.settings")

app = Celery("activation_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
