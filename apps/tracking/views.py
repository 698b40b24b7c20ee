import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.tracking.capture import client_address
from apps.tracking.selectors import health_report

HEALTH_TOKEN_HEADER = "X-Jifen-Health-Token"  # noqa: S105 - a header name, not a secret


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _offered_token(request: HttpRequest) -> str:
    """The token in X-Jifen-Health-Token, or in `Authorization: Bearer` (what Prometheus's scrape config sends)."""
    offered = request.headers.get(HEALTH_TOKEN_HEADER, "")
    if not offered:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        offered = credentials.strip() if scheme.lower() == "bearer" else ""
    return offered


def may_monitor(request: HttpRequest) -> bool:
    """Staff, a caller with JIFEN_HEALTH_TOKEN, or one from JIFEN_MONITORING_NETWORKS.

    One rule for /healthz's checks' values and /metrics: both are for the monitoring, and the
    checks' values (error text with hosts, ports and users) are the more telling of the two.
    """
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.JIFEN_HEALTH_TOKEN
    if token and hmac.compare_digest(_offered_token(request).encode(), token.encode()):
        return True
    if settings.JIFEN_MONITORING_NETWORKS:
        try:
            address = ipaddress.ip_address(client_address(request))
        except ValueError:
            return False
        return any(address in network for network in _networks(tuple(settings.JIFEN_MONITORING_NETWORKS)))
    return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when healthy, 503 naming the failing checks; the checks' values only for the monitoring (`may_monitor`)."""
    health = health_report()
    body = health.details() if may_monitor(request) else health.summary()
    return JsonResponse(body, status=200 if health.ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format of this host's processes and the pipeline's shared state (`may_monitor` only)."""
    if not may_monitor(request):
        return HttpResponseForbidden("Forbidden: /metrics needs the monitoring token or an allowed network.\n")
    from apps.tracking.metrics_page import metrics_page

    body, content_type = metrics_page()
    return HttpResponse(body, content_type=content_type)
