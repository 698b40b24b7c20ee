from django.contrib import admin
from django.urls import include, path

from apps.tracking.views import healthz
from config.api import api

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("apps.ledger.urls")),
    path("", include("apps.community.urls")),
]
