"""Watches the site's requests and hands each completed task to the workers."""

import logging

from django.http import HttpRequest, HttpResponse

from apps.tracking.capture import event_from_request
from apps.tracking.services.pipeline import event_dispatch

logger = logging.getLogger(__name__)


class TrackingMiddleware:
    """Never changes the response and never raises: the site comes first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        try:
            event = event_from_request(request, response)
            if event is not None:
                event_dispatch(event=event)
        except Exception:
            logger.exception("tracking failed for %s %s; the response goes out untouched", request.method, request.path)
        return response
