"""imagegen's JSON API for automation (``/imagegen/api/v1/``).

Plain Django views over the service layer: :mod:`.routing` holds the route
table that both the URLconf and the OpenAPI document are built from,
:mod:`.auth` the bearer tokens, :mod:`.errors` the one error shape,
:mod:`.views` the handlers and :mod:`.openapi` the document. See docs/api.md.
"""
