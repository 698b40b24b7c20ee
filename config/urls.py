from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from apps.tracking.views import healthz
from config.api import api


def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (the API, error pages): the site's icon."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("apps.ledger.urls")),
    path("", include("apps.community.urls")),
]
