from django.conf import settings
from django.conf.urls.static import static as debug_file_urls
from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from apps.tracking.views import healthz, metrics
from config.api import api


def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (the API, error pages): the site's icon."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("apps.ledger.urls")),
    path("", include("apps.community.urls")),
]
# Uploaded images (shop items) in development; in production the web server serves MEDIA_ROOT.
urlpatterns += debug_file_urls(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
