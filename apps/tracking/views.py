import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.tracking.selectors import health_report

HEALTH_TOKEN_HEADER = "X-Jifen-Health-Token"  # noqa: S105 - a header name, not a secret


def _may_see_details(request: HttpRequest) -> bool:
    """Staff, or a caller with JIFEN_HEALTH_TOKEN: the checks' values name hosts, ports and users."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.JIFEN_HEALTH_TOKEN
    offered = request.headers.get(HEALTH_TOKEN_HEADER, "")
    return bool(token) and hmac.compare_digest(offered.encode(), token.encode())


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when healthy, 503 naming the failing checks; the checks' values only for staff or the token."""
    health = health_report()
    body = health.details() if _may_see_details(request) else health.summary()
    return JsonResponse(body, status=200 if health.ok else 503)
