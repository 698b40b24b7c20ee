from django.contrib import admin

from apps.community.models import CheckIn, Comment, Post, Share


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "created_at")
    search_fields = ("title", "author__username")


admin.site.register(CheckIn)
admin.site.register(Comment)
admin.site.register(Share)
