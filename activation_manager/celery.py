import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.settings")

app = Celery("activation_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The audiences app keeps import and sync tasks in separate modules.
app.autodiscover_tasks(["audiences"], related_name="import_tasks")
app.autodiscover_tasks(["audiences"], related_name="sync_tasks")
