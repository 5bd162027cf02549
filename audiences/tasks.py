"""Celery tasks of the audiences app.

Each feature keeps its tasks in its own module (autodiscovered by activation_manager/celery.py) and is
re-exported here so ``audiences.tasks.<name>`` works too.
"""

# --- import tasks (audiences/import_tasks.py) ---
from audiences.import_tasks import import_audience  # noqa: F401

# --- end import tasks ---
# --- sync tasks ---
# --- end sync tasks ---
