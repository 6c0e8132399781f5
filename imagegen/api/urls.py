"""The API's URLs, built from the route table (mounted under ``api/v1/`` by
``imagegen.urls``; names in the ``imagegen`` namespace)."""

from .views import api

urlpatterns = api.urlpatterns()
