"""The callback probe: proof that a request to ``CALLBACK_BASE_URL`` reaches this site.

``manage.py imagegen doctor`` sends a request (or has the sandbox send one)
to ``<CALLBACK_BASE_URL>/<imagegen's prefix>/callbacks/probe/``, beside the
real callback URLs, so it takes the same way through proxies and
firewalls. The view reads nothing, writes nothing and answers every
caller the same constant: there is nothing to learn from it and nothing to
change through it.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

#: The probe's whole answer; the doctor looks for it to know the site answered.
ANSWER = {"imagegen": "callback-probe"}


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "HEAD", "POST"])
def callback_probe(request: HttpRequest) -> JsonResponse:
    """Answer the doctor's probe; the body is never read."""
    return JsonResponse(ANSWER)
