"""Failure messages as codes with parameters, rendered in the reader's
language when shown (imagegen.failures, GenerationJob.error_text).

Families: every catalog entry recorded with its parameters and rendered in
English and French; parameters that do not fit (missing, extra, wrong type,
not a dict, None, nested, a bad count, cause or detail) falling back to the
stored text; provider errors (HTTP statuses of APIXO, OpenAI and any HTTP
provider, transport failures, task failure codes) carrying a code and
parameters, and moderation refusals told by their message (APIXO's 403
is one, OpenAI's is not); every reader (admin job and run pages, status
JSON, API, webhook payload) rendering at display time; every code the source records having
its message in the catalog, and every message being recorded somewhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.translation import get_language, override

from imagegen import failures, job_states, services
from imagegen.api import auth
from imagegen.choices import Status
from imagegen.exceptions import PermanentError, ProviderError, TransientError
from imagegen.failures import CATALOG, render_failure
from imagegen.models import GenerationJob, GenerationRun
from imagegen.providers.apixo import FAIL_CODES, APIXOProvider, parse_task
from imagegen.providers.base import RETRYABLE_STATUSES, HTTPProvider
from imagegen.providers.openai import OpenAIImagesProvider
from imagegen.services import slots
from imagegen.webhooks import events

from .factories import make_job, make_superuser

pytestmark = [pytest.mark.services, pytest.mark.django_db]

#: A value of the right type for each parameter name the catalog uses.
SAMPLES: dict[str, Any] = {
    "attempts": 3,
    "count": 2,
    "cap": 4,
    "limit": 262144,
    "status": 418,
    "number": 2,
    "provider": "apixo",
    "error": "ReadTimeout",
    "reason": "The file is not a PNG, JPEG or WebP image.",
    "fail_code": "WEIRD_NEW_CODE",
}


def sample_params(key: str) -> dict[str, Any]:
    return {name: SAMPLES[name] for name in failures.parameters(key)}


def expected(key: str, params: dict[str, Any], language: str) -> str:
    """The catalog's template for ``key`` in ``language``, formatted."""
    with override(language):
        template = CATALOG[key]
        return str(template % params if params else template)


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_message_is_stored_in_the_site_language_and_shown_in_the_readers(key):
    params = sample_params(key)
    job = make_job(status=Status.RUNNING)
    with override("fr"):  # the worker's or request's language does not matter
        assert services.fail(job.pk, key, params=params, from_statuses=[Status.RUNNING])
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error_params) == (Status.FAILED, key, params)
    assert job.error_message == expected(key, params, settings.LANGUAGE_CODE)
    assert "%(" not in job.error_message
    for language in ("en", "fr", "de"):
        with override(language):
            assert job.error_text == expected(key, params, language)


@pytest.mark.parametrize(
    ("code", "params", "text"),
    [
        (
            "503",
            {"template": "SUBMIT_FAILED", "attempts": 3, "cause": "HTTP_503", "detail": "down"},
            "Submission failed after 3 attempts. The last attempt failed: "
            "The provider is temporarily unavailable. (down)",
        ),
        (
            "SUBMIT_ANSWERS_LOST",
            {"attempts": 5, "count": 1, "cause": "NO_ANSWER", "provider": "x", "error": "E"},
            "Gave up after 5 submission attempts: the provider's answer was lost 1 time. The "
            "provider may have started (and charged for) a task then; it counts against the "
            "budgets. The last attempt failed: No answer from x: E",
        ),
        ("FAILED", {"detail": "the provider's own words"}, "The provider reported a failure. "),
    ],
    ids=["cause-and-detail", "plural-and-cause", "detail-only"],
)
def test_causes_and_details_are_rendered_around_the_message(code, params, text):
    rendered = render_failure(code, params, "stored")
    assert rendered.startswith(text)
    if "detail" in params:
        assert rendered.endswith(f"({params['detail']})")


@pytest.mark.parametrize(
    ("code", "params"),
    [
        ("WAITING_FOR_SLOT", {"provider": "apixo"}),  # a key missing
        ("WAITING_FOR_SLOT", {}),  # a row recorded before codes had parameters
        ("WAITING_FOR_SLOT", {"provider": "apixo", "cap": "four"}),  # %d of text
        ("WAITING_FOR_SLOT", {"provider": "apixo", "cap": 4, "extra": 1}),  # a key extra
        ("WAITING_FOR_SLOT", {"provider": {"name": "apixo"}, "cap": 4}),  # not a primitive
        ("WAITING_FOR_SLOT", ["apixo", 4]),  # not a dict
        ("WAITING_FOR_SLOT", "apixo"),
        ("WAITING_FOR_SLOT", None),
        ("EXPIRED", {"unexpected": True}),
        ("SUBMIT_ANSWERS_LOST", {"attempts": 3, "count": "2"}),  # a plural's count as text
        ("SUBMIT_ANSWERS_LOST", {"attempts": 3, "count": True}),
        ("SUBMIT_ANSWERS_LOST", {"attempts": 3, "count": 2.5}),
        ("SUBMIT_FAILED", {"attempts": 3, "cause": "NO_SUCH_MESSAGE"}),
        ("SUBMIT_FAILED", {"attempts": 3, "cause": ["HTTP_503"]}),
        ("SUBMIT_FAILED", {"attempts": 3, "cause": "NO_ANSWER"}),  # the cause's keys missing
        ("HTTP_429", {"detail": 429}),  # the provider's words must be text
        ("503", {"template": "NO_SUCH_MESSAGE"}),
        ("503", {"template": 503}),
        ("A_THIRD_PARTY_CODE", {}),  # a code the catalog does not know
        ("", {}),  # no failure: the stored text, if any
    ],
)
def test_parameters_that_do_not_fit_fall_back_to_the_stored_text(code, params):
    assert render_failure(code, params, "the stored text") == "the stored text"
    job = GenerationJob(error_code=code, error_params=params, error_message="the stored text")
    with override("fr"):
        assert job.error_text == "the stored text"


def test_a_broken_translation_falls_back_to_the_stored_text(monkeypatch):
    """A translator's placeholder that the parameters lack: no exception."""
    broken = lazy(lambda: "Fehler %(nicht_da)s" if get_language() == "de" else "Fine.", str)()
    monkeypatch.setitem(CATALOG, "TEST_BROKEN", broken)
    with override("de"):
        assert render_failure("TEST_BROKEN", {}, "stored") == "stored"
    with override("fr"):
        assert render_failure("TEST_BROKEN", {}, "stored") == "Fine."


class TestProviderErrors:
    """Provider errors carry a code and parameters whose message renders
    again in any language; the provider's own words are the detail."""

    @pytest.fixture
    def apixo(self) -> APIXOProvider:
        return APIXOProvider("apixo", {"API_KEY": "k", "BASE_URL": "https://apixo.invalid"})

    @pytest.fixture
    def openai(self) -> OpenAIImagesProvider:
        return OpenAIImagesProvider("openai", {"API_KEY": "sk-secret-key"})

    @staticmethod
    def response(status: int, body: dict[str, Any]) -> httpx.Response:
        request = httpx.Request("POST", "https://provider.invalid/x")
        return httpx.Response(status, json=body, request=request)

    @staticmethod
    def assert_renders(error: ProviderError) -> None:
        assert error.code
        assert render_failure(error.code, error.params, "fallback") == error.message
        key = failures.template_key(error.code, error.params)
        with override("fr"):
            assert render_failure(error.code, error.params, "fallback") == expected(
                key, {k: error.params[k] for k in failures.parameters(key)}, "fr"
            ) + (f" ({error.params['detail']})" if error.params.get("detail") else "")

    @pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 418, 429, 500, 502, 503])
    def test_apixo_http_statuses(self, apixo, status):
        error = apixo.http_error(self.response(status, {"code": status, "message": "why"}))
        assert isinstance(error, TransientError if status in RETRYABLE_STATUSES else PermanentError)
        assert error.code == str(status)
        key = f"HTTP_{status}" if f"HTTP_{status}" in CATALOG else "HTTP_ERROR"
        assert failures.template_key(error.code, error.params) == key
        assert error.params["detail"] == "why"
        self.assert_renders(error)

    @pytest.mark.parametrize(
        ("status", "code", "expected_code", "key"),
        [
            (400, "invalid_value", "400", "OPENAI_HTTP_400"),
            (401, "invalid_api_key", "401", "OPENAI_HTTP_401"),
            (403, None, "403", "OPENAI_HTTP_403"),
            (413, None, "413", "OPENAI_HTTP_413"),
            (418, None, "418", "HTTP_ERROR"),
            (429, "rate_limit_exceeded", "429", "OPENAI_HTTP_429"),
            (429, "insufficient_quota", "INSUFFICIENT_CREDITS", "OPENAI_QUOTA"),
            (400, "moderation_blocked", "MODERATION", "MODERATION"),
            (503, None, "503", "OPENAI_HTTP_503"),
        ],
    )
    def test_openai_http_statuses(self, openai, status, code, expected_code, key):
        body = {"error": {"message": "why sk-secret-key", "type": "x", "code": code}}
        error = openai.http_error(self.response(status, body))
        assert error.code == expected_code
        assert failures.template_key(error.code, error.params) == key
        assert "sk-secret-key" not in repr(error.params) + error.message
        if status == 401:  # OpenAI's 401 text quotes the key: never kept
            assert "detail" not in error.params
        self.assert_renders(error)

    @pytest.mark.parametrize(
        ("exception", "code"),
        [
            (httpx.ConnectError("refused"), "CONNECT_FAILED"),
            (httpx.ReadTimeout("slow"), "NO_ANSWER"),
        ],
    )
    def test_transport_failures(self, apixo, monkeypatch, exception, code):
        def send(*args: Any, **kwargs: Any) -> Any:
            raise exception

        monkeypatch.setattr(apixo.client, "send", send)
        with pytest.raises(TransientError) as caught:
            apixo.request("GET", "/x", idempotent=True)
        assert caught.value.code == code
        assert caught.value.params == {"provider": "apixo", "error": type(exception).__name__}
        self.assert_renders(caught.value)

    @pytest.mark.parametrize(
        ("fail_code", "fail_msg", "code", "params"),
        [
            *[(c, "", c, {}) for c in sorted(FAIL_CODES)],
            ("CONTENT_VIOLATION", "nope", "CONTENT_VIOLATION", {"detail": "nope"}),
            (
                "WEIRD_NEW_CODE",
                "odd",
                "WEIRD_NEW_CODE",
                {"template": "PROVIDER_FAILURE", "fail_code": "WEIRD_NEW_CODE", "detail": "odd"},
            ),
            ("", "it broke", "FAILED", {"detail": "it broke"}),
            ("", "", "FAILED", {}),
        ],
    )
    def test_apixo_task_failures(self, fail_code, fail_msg, code, params):
        state = parse_task(
            {"taskId": "t", "state": "failed", "failCode": fail_code, "failMsg": fail_msg}
        )
        assert (state.error_code, state.error_params) == (code, params)
        assert render_failure(code, params) == state.error_message
        job = make_job(status=Status.RUNNING, provider_task_id="t")
        services.apply_update(job.pk, state, source="poll")
        job.refresh_from_db()
        assert (job.error_code, job.error_params) == (code, params)
        with override("fr"):
            assert job.error_text == render_failure(code, params)

    @pytest.mark.parametrize(
        ("provider", "status", "code", "refused"),
        [
            ("apixo", 403, None, True),  # APIXO's 403 is its content policy
            ("openai", 403, None, False),  # OpenAI's: no access to the model
            ("openai", 400, "moderation_blocked", True),
            ("apixo", 429, None, False),
            ("openai", 401, "invalid_api_key", False),
        ],
    )
    def test_moderation_refusals_are_told_by_the_message(
        self, apixo, openai, provider, status, code, refused
    ):
        """The job page offers "edit the prompt" for these (job_states)."""
        backend = apixo if provider == "apixo" else openai
        body = {"code": status, "message": "m", "error": {"message": "m", "code": code}}
        error = backend.http_error(self.response(status, body))
        job = make_job(status=Status.RUNNING)
        services.fail(job.pk, error.code, params=error.params, from_statuses=["running"])
        job.refresh_from_db()
        assert job_states.refused_by_moderation(job) is refused

    @pytest.mark.parametrize(
        ("code", "params", "refused"),
        [
            ("403", {}, True),  # recorded before failures had parameters
            ("403", None, True),
            ("CONTENT_VIOLATION", {"detail": "nope"}, True),
            ("403", {"template": "OPENAI_HTTP_403"}, False),
            ("503", {"template": "SUBMIT_FAILED", "attempts": 3, "cause": "HTTP_503"}, False),
        ],
    )
    def test_moderation_of_stored_rows(self, code, params, refused):
        job = GenerationJob(status=Status.FAILED, error_code=code, error_params=params)
        assert job_states.refused_by_moderation(job) is refused

    def test_a_provider_error_with_only_a_message_is_shown_as_given(self):
        """A third-party provider's error without a code or parameters."""
        error = PermanentError("Their own words.")
        code, params = error.failure("SUBMIT_REFUSED")
        assert (code, params) == ("SUBMIT_REFUSED", {"detail": "Their own words."})
        assert render_failure(code, params) == "The provider refused the job. (Their own words.)"
        coded = PermanentError("Their own words.", code="THEIRS")
        code, params = coded.failure("SUBMIT_REFUSED")
        job = make_job(status=Status.RUNNING)
        services.fail(job.pk, code, coded.message, params=params, from_statuses=["running"])
        job.refresh_from_db()
        assert (job.error_code, job.error_params) == ("THEIRS", {})
        with override("fr"):
            assert job.error_text == job.error_message == "Their own words."


# The readers ---------------------------------------------------------------

#: A message whose text says in which language it was rendered.
TAGGED = lazy(lambda: f"Failed in {get_language()} after %(attempts)d tries.", str)()


@pytest.fixture
def tagged_job(monkeypatch, django_user_model):
    """A job failed with :data:`TAGGED` (recorded in a French request), and
    a superuser who may read it everywhere."""
    monkeypatch.setitem(CATALOG, "TEST_TAGGED", TAGGED)
    user = make_superuser(django_user_model)
    job = make_job(user, status=Status.RUNNING)
    with override("fr"):
        services.fail(job.pk, "TEST_TAGGED", params={"attempts": 3}, from_statuses=["running"])
    job.refresh_from_db()
    assert job.error_message == f"Failed in {settings.LANGUAGE_CODE} after 3 tries."
    return job


def admin_page(client: Any, job: GenerationJob, language: str) -> str:
    url = reverse("admin:imagegen_generationjob_change", args=[job.pk])
    html = client.get(url, headers={"accept-language": language}).content.decode()
    return re.search(r'<p id="imagegen-error"[^>]*>([^<]*)</p>', html).group(1)


def run_page(client: Any, job: GenerationJob, language: str) -> str:
    run = GenerationRun.objects.create(
        kind=GenerationRun.Kind.CANDIDATES, created_by=job.created_by
    )
    GenerationJob.objects.filter(pk=job.pk).update(run=run)
    url = reverse("admin:imagegen_generationrun_change", args=[run.pk])
    html = client.get(url, headers={"accept-language": language}).content.decode()
    return re.search(r'<p class="errornote imagegen-run-error"[^>]*>([^<]*)</p>', html).group(1)


def status_json(client: Any, job: GenerationJob, language: str) -> str:
    url = reverse("imagegen:job-status", kwargs={"job_id": job.pk})
    return client.get(url, headers={"accept-language": language}).json()["error_message"]


def api_job(client: Any, job: GenerationJob, language: str) -> str:
    token = auth.create_token(job.created_by, "tests")[1]
    url = reverse("imagegen:api-job", kwargs={"job_id": job.pk})
    headers = {"authorization": f"Bearer {token}", "accept-language": language}
    return client.get(url, headers=headers).json()["error_message"]


@pytest.mark.parametrize("read", [admin_page, run_page, status_json, api_job])
@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_pages_and_the_api_render_in_the_language_of_the_request(
    client, tagged_job, read, language
):
    client.force_login(tagged_job.created_by)
    assert read(client, tagged_job, language) == f"Failed in {language} after 3 tries."


@pytest.mark.parametrize("language", ["fr", "de"])
def test_webhook_payloads_are_rendered_in_the_site_language(tagged_job, language):
    """A receiver has no language: whoever's change it is, LANGUAGE_CODE."""
    with override(language):
        data = events.job_data(tagged_job)
    assert data["error_code"] == "TEST_TAGGED"
    assert data["error_message"] == f"Failed in {settings.LANGUAGE_CODE} after 3 tries."


def test_api_and_status_keep_the_code_for_programs(client, tagged_job):
    client.force_login(tagged_job.created_by)
    url = reverse("imagegen:job-status", kwargs={"job_id": tagged_job.pk})
    assert client.get(url).json()["error_code"] == "TEST_TAGGED"


# Every code has its message, every message a code ----------------------------

SOURCE = Path(failures.__file__).parent
#: Where a code or message key is written as a literal in the source.
RECORDING = [
    r'code="([A-Za-z_0-9]+)"',
    r'code = "([A-Za-z_0-9]+)"',
    r'code, params = "([A-Z_0-9]+)"',
    r'TEMPLATE\] = "([A-Z_0-9]+)"',
    r'"template": "([A-Za-z_0-9]+)"',
    r'template="([A-Za-z_0-9]+)"',
    r'TEMPLATE: "([A-Za-z_0-9]+)"',
    r'\.failure\("([A-Za-z_0-9]+)"\)',
    r'failure_fields\(\s*"([A-Za-z_0-9]+)"',
    r'_fail\(job, attempt, "([A-Za-z_0-9]+)"',
    r'_told_as\(exc, "([A-Za-z_0-9]+)"\)',
    r' or "([A-Z_0-9]+)"',
    r'WAITING = "([A-Z_0-9]+)"',
]
#: Codes recorded only with a ``template`` naming their message.
TOLD_BY_TEMPLATE = {"401", "INVALID_REQUEST"}


def recorded_literals() -> set[str]:
    found: set[str] = set()
    for path in [
        SOURCE / "exceptions.py",
        *SOURCE.glob("services/*.py"),
        *SOURCE.glob("providers/*.py"),
    ]:
        text = path.read_text()
        for pattern in RECORDING:
            found.update(m for m in re.findall(pattern, text) if m == m.upper())
    return found


def test_every_code_recorded_in_the_source_has_its_message():
    literals = recorded_literals()
    assert {"EXPIRED", "WAITING_FOR_SLOT", "BAD_RESULT", "NO_ANSWER", "OPENAI_QUOTA"} <= literals
    missing = sorted(literals - set(CATALOG) - TOLD_BY_TEMPLATE)
    assert missing == []
    assert slots.WAITING in CATALOG
    assert FAIL_CODES <= set(CATALOG)


def test_every_message_is_recorded_somewhere():
    made_from_status = re.compile(
        rf"({HTTPProvider.http_messages}|{OpenAIImagesProvider.http_messages})\d{{3}}"
    )
    unused = sorted(
        key
        for key in set(CATALOG) - recorded_literals() - FAIL_CODES
        if not made_from_status.fullmatch(key)
    )
    assert unused == []
