"""The example site's URLs plus a bare view, the baseline of the webhook benchmark."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """Answers 200 and does nothing: what any view costs in this process layout."""
    return HttpResponse("ok")


urlpatterns = [path("bare/", bare), *site_urlpatterns]
