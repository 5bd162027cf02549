"""Daily re-validation of connections. Tasks take connection ids, never credentials."""

from __future__ import annotations

import logging

from celery import shared_task

from credentials import services
from credentials.selectors import connection_ids_to_revalidate

logger = logging.getLogger(__name__)


@shared_task(name="credentials.revalidate_connection", acks_late=True, soft_time_limit=120, time_limit=180,
             ignore_result=True)
def revalidate_connection(connection_id: int) -> str:
    """Check one connection (safe to run twice: each run just checks again)."""
    outcome = services.revalidate_connection(connection_id=connection_id)
    return outcome.result


@shared_task(name="credentials.revalidate_all_connections", acks_late=True, soft_time_limit=60, time_limit=120,
             ignore_result=True)
def revalidate_all_connections() -> int:
    """Beat entry point: one revalidate_connection task per active or error connection."""
    ids = connection_ids_to_revalidate()
    for connection_id in ids:
        revalidate_connection.delay(connection_id)
    logger.info("queued revalidation of %s connections", len(ids))
    return len(ids)
