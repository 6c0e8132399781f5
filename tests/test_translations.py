"""The translations imagegen ships (docs/translations.md): French and German catalogs of
the ``django`` domain (Python and templates) and the ``djangojs`` domain (scripts, through
``imagegen:jsi18n``).

Every catalog is complete (nothing untranslated or fuzzy), its placeholders match its
source strings, its compiled ``.mo`` is what its ``.po`` says, and no string of the code
is missing from it (makemessages run again on a copy of the package); a message that
counts something has plural forms and one with several placeholders names them; the
admin's pages render in each language without English left from imagegen's catalog.
"""

from __future__ import annotations

import ast
import gettext
import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from imagegen.choices import Status

from .conftest import unavailable
from .factories import make_image, make_job

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "imagegen"
LANGUAGES = {"fr": 2, "de": 2}  # language: its number of plural forms
DOMAINS = ["django", "djangojs"]
CATALOGS = [(language, domain) for language in LANGUAGES for domain in DOMAINS]

# printf style (%s, %d, %(name)s, with flags) and str.format style ({}, {name}).
_PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc%]|\{\w*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.msgctxt, self.msgid, self.msgid_plural)


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (the header included, obsolete ones left out)."""
    entries: list[Entry] = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry, target = Entry(), None
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid ") for line in lines):
            continue
        for line in lines:
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith('"'):
                text = ast.literal_eval(line)
                if isinstance(target, int):
                    entry.msgstr[target] += text
                else:
                    setattr(entry, target, getattr(entry, target) + text)
            elif not line.startswith("#"):
                keyword, _, value = line.partition(" ")
                text = ast.literal_eval(value)
                if keyword.startswith("msgstr"):
                    target = int(keyword[7:-1]) if "[" in keyword else 0
                    entry.msgstr[target] = text
                else:
                    target = keyword
                    setattr(entry, target, text)
        entries.append(entry)
    return entries


def po_path(language: str, domain: str) -> Path:
    return PACKAGE / "locale" / language / "LC_MESSAGES" / f"{domain}.po"


def messages(language: str, domain: str) -> list[Entry]:
    """The catalog's messages, without its header."""
    return [entry for entry in read_po(po_path(language, domain)) if entry.msgid]


def placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_catalog_is_complete(language: str, domain: str) -> None:
    """Family: each language x domain. Every message has every plural form translated,
    none is fuzzy (msgfmt would leave it out), and the header names the language and
    its plural rule."""
    header = next(entry for entry in read_po(po_path(language, domain)) if not entry.msgid)
    assert "fuzzy" not in header.flags
    assert f"Language: {language}\n" in header.msgstr[0]
    assert f"Plural-Forms: nplurals={LANGUAGES[language]};" in header.msgstr[0]
    forms = set(range(LANGUAGES[language]))
    untranslated = [
        entry.msgid
        for entry in messages(language, domain)
        if "fuzzy" in entry.flags
        or not all(entry.msgstr.get(form) for form in (forms if entry.msgid_plural else {0}))
    ]
    assert untranslated == []


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_placeholders_match_their_source(language: str, domain: str) -> None:
    """Family: each language x domain, every message. A translation keeps exactly the
    placeholders of its source (%(name)s, %s, %d, {}, {name}): the singular form those
    of msgid, every plural form those of msgid_plural."""
    wrong = []
    for entry in messages(language, domain):
        for form, text in entry.msgstr.items():
            source = entry.msgid_plural if entry.msgid_plural and form > 0 else entry.msgid
            if placeholders(text) != placeholders(source):
                wrong.append((source, text))
    assert wrong == []


# A number in a message: an integer placeholder (%d, %(name)d), or one of the names under
# which the code passes a count as text (templates and scripts only have %(name)s).
_NUMBER = re.compile(
    r"%(?:\([^)]+\))?[-#0 +]*\d*[di]|%\((?:n|count|counter|max|finished|seconds|s)\)s|\{(?:n|max)\}"
)

#: Messages with a number that counts nothing, so no plural form: what it is.
NOT_COUNTS = {
    "Prompt wording %(n)d": "an ordinal label",
    "Wording %(n)d": "an ordinal label",
    "Candidate %(n)d": "an ordinal label",
    "Image %(n)s": "an ordinal label",
    "Reference image %(number)d could not be downloaded: %(reason)s": "an ordinal",
    "Reference image %(number)d cannot be used: %(reason)s": "an ordinal",
    "The provider answered with HTTP status %(status)d.": "an HTTP status",
    "The describer answered HTTP %(status)d: %(detail)s": "an HTTP status",
    "The describer answered HTTP %(status)d.": "an HTTP status",
    "HTTP %(status)d: redirects are not followed; use the final URL (%(location)s).": "a status",
    "Enter a whole number from 1 to %(max)d.": "the bound of a range of numbers",
    "How many images to make with these settings, to pick from (1 to {max}).": "a range",
    "The server is not answering; trying again in %(seconds)s s. The job carries on.": "unit",
    "Discarded. Undo within %(seconds)s s.": "a unit symbol",
    "Timed out after %(s)s s (WEBHOOK_TIMEOUT).": "a unit symbol",
}


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_messages_that_count_have_plural_forms(language: str, domain: str) -> None:
    """Family: each language x domain, every message with a number in it (an integer
    placeholder, or %(n)s, %(max)s, %(finished)s... as templates and scripts write them).
    It is a plural entry (ngettext, npgettext, {% blocktranslate count %}, the scripts'
    ngettext), so each language makes its words agree with the number (French says
    "1 image" and "0 image", German "1 Bild"; Polish has three forms);
    test_catalog_is_complete checks every form is filled. The numbers that count
    nothing (an ordinal, a status, a range, before a unit symbol) are NOT_COUNTS."""
    entries = messages(language, domain)
    singular = [
        entry.msgid
        for entry in entries
        if not entry.msgid_plural and _NUMBER.search(entry.msgid) and entry.msgid not in NOT_COUNTS
    ]
    assert singular == []
    plural = [entry for entry in entries if entry.msgid_plural]
    # Each form says the number (none drops it for "one", which may be 21 or 0).
    assert [e.msgid for e in plural if not all(_NUMBER.search(t) for t in e.msgstr.values())] == []


def test_the_exceptions_are_still_messages() -> None:
    """NOT_COUNTS names messages of the catalogs: a reworded one leaves the list."""
    known = {entry.msgid for domain in DOMAINS for entry in messages("fr", domain)}
    assert set(NOT_COUNTS) - known == set()


_POSITIONAL = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc]|\{\}")


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_several_placeholders_are_named(language: str, domain: str) -> None:
    """Family: each language x domain, every message with more than one placeholder.
    Each is named (%(name)s, {name}), never positional (%s, {}), so a translation may put
    them in its own order (German puts the verb last, French the adjective after)."""
    unnamed = [
        entry.msgid
        for entry in messages(language, domain)
        if len(placeholders(entry.msgid)) > 1 and _POSITIONAL.search(entry.msgid)
    ]
    assert unnamed == []


def _expected_catalog(language: str, domain: str) -> dict[Any, str]:
    """What gettext reads from a .mo compiled from the .po (GNUTranslations' keys)."""
    catalog: dict[Any, str] = {}
    for entry in read_po(po_path(language, domain)):
        if "fuzzy" in entry.flags or not all(entry.msgstr.values()):
            continue  # msgfmt leaves them out: gettext falls back to the source string
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if not msgid:  # msgfmt leaves the template's date out of the header
            entry.msgstr[0] = re.sub(r"^POT-Creation-Date: .*\n", "", entry.msgstr[0], flags=re.M)
        if entry.msgid_plural:
            catalog.update({(msgid, form): text for form, text in entry.msgstr.items()})
        else:
            catalog[msgid] = entry.msgstr[0]
    return catalog


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_compiled_catalog_is_up_to_date(language: str, domain: str) -> None:
    """Family: each language x domain. The committed .mo (what Django reads) holds
    exactly the .po's messages and translations: run compilemessages after editing a
    .po."""
    with po_path(language, domain).with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
    assert compiled == _expected_catalog(language, domain)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[Any]]:
    """Each domain's message keys as makemessages finds them in the code now, in a copy
    of the package (the committed catalogs are not touched)."""
    if not (shutil.which("xgettext") and shutil.which("msgmerge")):
        unavailable("GNU gettext (xgettext, msgmerge) is not installed; Debian: gettext")
    copy = tmp_path_factory.mktemp("catalogs") / "imagegen"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(copy)
        for domain in DOMAINS:
            # As docs/translations.md runs it, from the package's directory.
            call_command(
                "makemessages",
                locale=list(LANGUAGES),
                domain=domain,
                ignore_patterns=["migrations/*"],
                no_obsolete=True,
                verbosity=0,
            )
    return {
        f"{language}/{domain}": {
            entry.key
            for entry in read_po(copy / "locale" / language / "LC_MESSAGES" / f"{domain}.po")
            if entry.msgid
        }
        for language, domain in CATALOGS
    }


@pytest.mark.parametrize(("language", "domain"), CATALOGS)
def test_catalog_is_not_stale(regenerated: dict[str, set[Any]], language: str, domain: str) -> None:
    """Family: each language x domain. The catalog holds exactly the strings the code
    marks for translation today: none missing (a new or changed string), none left over
    (a removed one). Fix: `cd imagegen && django-admin makemessages -l fr -l de
    [-d djangojs]`, translate, compilemessages."""
    committed = {entry.key for entry in messages(language, domain)}
    found = regenerated[f"{language}/{domain}"]
    assert {"missing": found - committed, "left over": committed - found} == {
        "missing": set(),
        "left over": set(),
    }


# The scripts' catalog -------------------------------------------------------------------

JSI18N_TAG = "{% url 'imagegen:jsi18n' %}"
_SCRIPT_TAG = re.compile(r"\{% static '([^']+\.js)' %\}")


def _templates_loading_scripts() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("templates/**/*.html")
        if _SCRIPT_TAG.search(path.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize(
    "template", _templates_loading_scripts(), ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_pages_load_the_catalog_before_imagegens_scripts(template: Path) -> None:
    """Family: every template of imagegen that loads one of its scripts (admin and
    Wagtail pages, the chooser's fragments). imagegen:jsi18n comes before the first
    script, so gettext() there knows imagegen's strings."""
    text = template.read_text(encoding="utf-8")
    first_script = _SCRIPT_TAG.search(text)
    assert first_script
    assert JSI18N_TAG in text[: first_script.start()]


def test_form_media_load_the_catalog_before_the_scripts_that_translate() -> None:
    """Family: every form media of imagegen whose script calls gettext() (the field
    dialog, on the site's own change forms): imagegen:jsi18n comes first."""
    from django import forms

    from imagegen.admin.image_fields import GenerateControlWidget
    from imagegen.admin.widgets import ReferenceUrlsWidget

    translating = {
        str(path.relative_to(root))
        for root in [PACKAGE / "static", PACKAGE / "contrib" / "wagtail" / "static"]
        for path in root.rglob("*.js")
        if re.search(r"\b(n?gettext|interpolate)\(", path.read_text(encoding="utf-8"))
    }
    assert "imagegen/fields/dialog.js" in translating
    catalog = reverse("imagegen:jsi18n")
    for widget in [GenerateControlWidget(forms.TextInput(), {}), ReferenceUrlsWidget()]:
        scripts = [str(script) for script in widget.media._js]
        for script in translating.intersection(scripts):
            assert catalog in scripts[: scripts.index(script)], (widget, script)


_PLURAL_RULES = {"fr": "(n > 1)", "de": "(n != 1)"}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_scripts_catalog_serves_every_message_and_its_plural_forms(
    client: Any, language: str
) -> None:
    """Family: French and German x every message of the djangojs catalog.
    imagegen:jsi18n, asked for in the language, serves each translation, a plural
    message as the list of its forms with the language's rule, which the scripts'
    ngettext picks from (so interpolate(ngettext(...), values, true) agrees with the
    number, as the bulk fill's counter does)."""
    response = client.get(reverse("imagegen:jsi18n"), HTTP_ACCEPT_LANGUAGE=language)
    script = response.content.decode()
    assert f"const v = {_PLURAL_RULES[language]};" in script
    served = json.loads(re.search(r"const newcatalog = (\{.*?\n  \});", script, re.S)[1])
    expected = {
        f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid: (
            [entry.msgstr[form] for form in range(LANGUAGES[language])]
            if entry.msgid_plural
            else entry.msgstr[0]
        )
        for entry in messages(language, "djangojs")
    }
    assert expected
    assert {key: served.get(key) for key in expected} == expected


# Rendering -----------------------------------------------------------------------------

# Known strings of each page, as each language shows them (from the catalog's own
# translations, so a wording changed there changes here).
PAGE_STRINGS = {
    "generate": ["Generate image", "Aspect ratio", "Reference images", "Price:"],
    "job": ["Generation job", "Generate again", "Took %(elapsed)s.", "Approve"],
    "image": ["Generated image", "How it was made", "Alt text", "Use as reference"],
    # Its failure is stored in English and rendered from its code in the reader's.
    "failed-job": [
        "job status\x04Failed",
        "Retry",
        "Submission failed after %(attempts)d attempt.",
    ],
}


STORED_FAILURE = "Submission failed after 3 attempts."


def _translation(language: str, key: str) -> str:
    """The (first) translation of ``key``: a msgid, or "context\x04msgid" as gettext
    keys a message with a context."""
    context, _, msgid = key.rpartition("\x04")
    return next(
        entry.msgstr[0]
        for entry in messages(language, "django")
        if entry.msgid == msgid and (entry.msgctxt or "") == context
    )


def _english_left(page: str, language: str) -> list[str]:
    """imagegen's source strings of more than one word, without placeholders, whose
    translation differs, that the page still shows in English."""
    return sorted(
        entry.msgid
        for entry in messages(language, "django")
        if " " in entry.msgid
        and not placeholders(entry.msgid)
        and not entry.msgid_plural
        and entry.msgstr[0] != entry.msgid
        and entry.msgid in page
    )


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, str | int | float | bool) or items is None:
        return []
    return [text for item in items for text in _strings(item)]


@pytest.fixture
def page_urls(editor: Any) -> dict[str, str]:
    job = make_job(editor)
    image = make_image(job)
    failed = make_job(
        editor,
        status=Status.FAILED,
        error_code="SUBMIT_FAILED",
        error_params={"attempts": 3},
        error_message=STORED_FAILURE,
    )
    return {
        "generate": reverse("admin:imagegen_generationjob_add"),
        "job": reverse("admin:imagegen_generationjob_change", args=[job.pk]),
        "image": reverse("admin:imagegen_generatedimage_change", args=[image.pk]),
        "failed-job": reverse("admin:imagegen_generationjob_change", args=[failed.pk]),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGE_STRINGS))
@pytest.mark.parametrize("language", list(LANGUAGES))
def test_admin_pages_render_in_the_readers_language(
    logged_in: Any, page_urls: dict[str, str], page: str, language: str
) -> None:
    """Family: the generate form, a job's page, an image's page and a failed job's page
    x French and German, asked for by the browser's Accept-Language (LocaleMiddleware).
    The page says it is in that language, shows known strings translated, and no
    English string of imagegen's catalog is left on it (the JSON texts its scripts show
    included); a failure stored in English is shown in the reader's language."""
    response = logged_in.get(page_urls[page], HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Language"] == language
    content = response.content.decode()
    # The scripts' texts travel as JSON, with non-ASCII characters escaped.
    data = re.findall(r'<script[^>]*type="application/json"[^>]*>(.*?)</script>', content, re.S)
    shown = "\n".join([html.unescape(content), *_strings(json.loads(text) for text in data)])
    for key in PAGE_STRINGS[page]:
        translated = _translation(language, key).split("%(")[0]
        assert translated in shown, key
    assert _english_left(shown, language) == []
    assert STORED_FAILURE not in shown
