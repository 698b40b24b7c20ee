from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.tracking.selectors import health_report


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with every check when healthy; 503 naming the failing checks otherwise."""
    health = health_report()
    body = {"status": "ok" if health.ok else "unhealthy", "problems": health.problems, **health.checks}
    return JsonResponse(body, status=200 if health.ok else 503)
