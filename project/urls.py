from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("imagegen/", include("imagegen.urls")),
]

# The example site serves uploaded and generated files itself (file storage,
# no web server in front). A real site serves MEDIA_ROOT from its web server
# or uses S3 (see docs/install.md).
if settings.DEBUG or settings.SERVE_MEDIA:
    urlpatterns += [
        re_path(
            r"^{}(?P<path>.*)$".format(settings.MEDIA_URL.lstrip("/")),
            serve,
            {"document_root": settings.MEDIA_ROOT},
        )
    ]
