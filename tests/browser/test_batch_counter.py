"""The bulk fill batch page's counter in French and German, in real Chromium: one
sentence of the scripts' catalog with named placeholders (imagegen/fill/batch.js reads
it with ngettext and interpolate), so its words agree with the number
(docs/translations.md, "Writing strings that translate").

Family: a French and a German browser x the counter as a fill's jobs end (none of
three, one, all three): the page's first text (the template's) and each text the
script draws from the status JSON read as the djangojs catalog says them, in the
plural form the language's rule picks for the number finished (French "1 sur 3
terminée", "3 sur 3 terminées": the first text's words with new numbers would say
"3 sur 3 terminée"). The run and its jobs are rows ended by the test: the
page follows the status JSON, no worker or provider involved.
"""

from __future__ import annotations

import gettext
import re
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from imagegen.choices import Status
from imagegen.models import GenerationJob, GenerationRun
from project.articles.models import Article

from ..factories import PASSWORD, make_job, make_superuser
from ..test_translations import po_path, read_po
from .conftest import LoginFunc

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.fill_admin")]

COUNTER = "%(finished)s of %(total)s finished"


def counter(language: str, finished: int, total: int) -> str:
    """The counter as the scripts' catalog says it, in the form the language's
    Plural-Forms rule picks for ``finished``."""
    entries = read_po(po_path(language, "djangojs"))
    rule = re.search(r"plural=(.*?);?\n", entries[0].msgstr[0])
    assert rule
    entry = next(entry for entry in entries if entry.msgid == COUNTER)
    form = gettext.c2py(rule[1])(finished)
    return entry.msgstr[form] % {"finished": finished, "total": total}


@pytest.mark.parametrize(("locale", "language"), [("fr-FR", "fr"), ("de-DE", "de")])
def test_the_counter_agrees_with_the_number_finished(
    browser: Any,
    live_server: Any,
    admin_login: LoginFunc,
    django_user_model: Any,
    settings: Any,
    locale: str,
    language: str,
) -> None:
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {"articles.Article.cover": {"prompt": "Editorial photo: {title}."}},
    }
    user = make_superuser(django_user_model)
    article_type = ContentType.objects.get_for_model(Article)
    run = GenerationRun.objects.create(
        kind=GenerationRun.Kind.FILL,
        created_by=user,
        target_content_type=article_type,
        target_field="cover",
        settings={"review": False, "outcomes": {}, "trimmed": []},
    )
    jobs = [
        make_job(
            user,
            status=Status.RUNNING,
            run=run,
            target_content_type=article_type,
            target_object_id=str(Article.objects.create(title=f"Article {number}").pk),
            target_field="cover",
        )
        for number in range(3)
    ]

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        admin_login(page, live_server.url, user.username, PASSWORD)
        page.goto(f"{live_server.url}/fill-admin/articles/article/imagegen-fill/{run.pk}/")
        assert page.locator("html").get_attribute("lang") == language
        count = page.locator("#imagegen-fill-count")
        assert count.inner_text().strip() == counter(language, 0, 3)
        for ended in (jobs[:1], jobs):
            GenerationJob.objects.filter(pk__in=[job.pk for job in ended]).update(
                status=Status.FAILED, completed_at=timezone.now()
            )
            expected = counter(language, len(ended), 3)
            page.wait_for_function(
                "(text) => document.querySelector('#imagegen-fill-count').innerText.trim()"
                " === text",
                arg=expected,
            )
    finally:
        context.close()
