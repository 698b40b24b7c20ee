"""URLs a host site includes for the public leaderboard: `path("", include("apps.ledger.urls"))`."""

from django.urls import path

from apps.ledger import views

urlpatterns = [
    path("leaderboard/", views.leaderboard, name="leaderboard"),
]
