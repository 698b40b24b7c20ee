from django.urls import path

from apps.community import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("checkin/", views.checkin, name="checkin"),
    path("posts/", views.post_create, name="post-create"),
    path("posts/<int:post_id>/", views.post_detail, name="post-detail"),
    path("posts/<int:post_id>/comments/", views.comment_create, name="comment-create"),
    path("posts/<int:post_id>/share/", views.post_share, name="post-share"),
    path("posts/<int:post_id>/delete/", views.post_delete, name="post-delete"),
    path("me/points/", views.my_points, name="my-points"),
    path("me/notifications/", views.notifications, name="notifications"),
    path("me/notifications/read/", views.notifications_read, name="notifications-read"),
    path("users/<str:username>/", views.profile, name="profile"),
    path("shop/", views.shop, name="shop"),
    path("shop/redeem/", views.shop_redeem, name="shop-redeem"),
]
