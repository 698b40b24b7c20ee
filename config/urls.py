from django.contrib import admin
from django.urls import include, path

from apps.tracking.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("apps.ledger.urls")),
    path("", include("apps.community.urls")),
]
