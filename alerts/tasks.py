"""Sending alerts: one retried task per incident, on the default queue. It takes the incident's id and sends each
channel that has not had it yet, so a retry (or a duplicate delivery of the task) never sends a channel twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from alerts import services

logger = logging.getLogger(__name__)


@shared_task(name="alerts.deliver_incident", bind=True, acks_late=True, ignore_result=True, soft_time_limit=120,
             time_limit=180, max_retries=None)
def deliver_incident(self, incident_id: int) -> int:
    """Send the incident's messages; channels that failed are tried again with a doubling wait, up to
    ALERT_DELIVERY_ATTEMPTS attempts in all. Returns how many channels still failed."""
    failed = services.deliver(incident_id=incident_id)
    if failed and self.request.retries + 1 < settings.ALERT_DELIVERY_ATTEMPTS:
        raise self.retry(countdown=settings.ALERT_RETRY_SECONDS * 2 ** self.request.retries)
    if failed:
        logger.warning("incident %s: %s channel(s) still failed after %s attempts", incident_id, len(failed),
                       self.request.retries + 1)
    return len(failed)
