"""Declarations of generable fields (imagegen.fields.registry) and their
system checks (imagegen.checks.fields), by family:

- every kind of bad declaration, in the setting and on a ModelAdmin, and
  the check id each gets: E027 (IMAGE_FIELDS not a dict, a malformed key, an
  unknown model, field or option, options not a dict, a malformed admin
  attribute), E028 (a field no target fills), E029 (a bad template or
  placeholder), E030 (an alt field missing or not text), E031 (resolution,
  aspect ratio, shape, candidates, review), E032 (a foreign key whose assets
  the adapter does not make);
- good declarations from either source and both at once (the setting's
  options over the admin's), and declaration_for on each (model, proxy,
  instance, undeclared, declared wrongly);
- the default aspect ratio: declared, nearest to the shape, "auto".
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.sites import all_sites

from imagegen.checks import check_settings
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.fields import declaration_for, declarations, declarations_for
from imagegen.fields.targets import FileTarget, GeneratedImageTarget
from tests.content_app.models import Article, Profile

COVER = "imagegen_content_tests.Article.cover"
PORTRAIT = "imagegen_content_tests.Profile.portrait"


class ArticleProxy(Article):
    class Meta:
        proxy = True
        app_label = "imagegen_content_tests"


def field_ids(settings, image_fields):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "IMAGE_FIELDS": image_fields}
    return sorted(m.id for m in check_settings() if m.id in FIELD_IDS)


FIELD_IDS = {f"imagegen.E0{n}" for n in range(27, 33)}


@pytest.mark.parametrize(
    ("image_fields", "expected"),
    [
        # E027: the setting's shape, models, fields and options.
        (["imagegen_content_tests.Article.cover"], ["imagegen.E027"]),
        ({"Article.cover": {}}, ["imagegen.E027"]),
        ({"imagegen_content_tests.Article": {}}, ["imagegen.E027"]),
        ({"a.b.c.d": {}}, ["imagegen.E027"]),
        ({"imagegen_content_tests..cover": {}}, ["imagegen.E027"]),
        ({1: {}}, ["imagegen.E027"]),
        ({"nope.Article.cover": {}}, ["imagegen.E027"]),
        ({"imagegen_content_tests.Nope.cover": {}}, ["imagegen.E027"]),
        ({"imagegen_content_tests.Article.nope": {}}, ["imagegen.E027"]),
        ({"imagegen_content_tests.Article.author_id": {}}, ["imagegen.E027"]),
        ({COVER: "Editorial photo"}, ["imagegen.E027"]),
        ({COVER: {"promt": "x"}}, ["imagegen.E027"]),
        # E028: fields no target fills.
        ({"imagegen_content_tests.Article.title": {}}, ["imagegen.E028"]),
        ({"imagegen_content_tests.Article.author": {}}, ["imagegen.E028"]),
        ({"imagegen_content_tests.Article.word_count": {}}, ["imagegen.E028"]),
        # E029: templates.
        ({COVER: {"prompt": "{title.__class__}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{title!r}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{title:>99999}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{title[0]}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{title"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{author}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{get_absolute_url}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": "{nope} {title}"}}, ["imagegen.E029"]),
        ({COVER: {"prompt": 42}}, ["imagegen.E029"]),
        # E030: the alt field.
        ({COVER: {"alt_field": "nope"}}, ["imagegen.E030"]),
        ({COVER: {"alt_field": "word_count"}}, ["imagegen.E030"]),
        ({COVER: {"alt_field": "author"}}, ["imagegen.E030"]),
        ({COVER: {"alt_field": "cover"}}, ["imagegen.E030"]),
        ({COVER: {"alt_field": 3}}, ["imagegen.E030"]),
        # E031: values.
        ({COVER: {"resolution": "8k"}}, ["imagegen.E031"]),
        ({COVER: {"resolution": "1K"}}, ["imagegen.E031"]),
        ({COVER: {"aspect_ratio": "2:1"}}, ["imagegen.E031"]),
        ({COVER: {"shape": (1200,)}}, ["imagegen.E031"]),
        ({COVER: {"shape": (1200, 0)}}, ["imagegen.E031"]),
        ({COVER: {"shape": (1200, -630)}}, ["imagegen.E031"]),
        ({COVER: {"shape": ("1200", "630")}}, ["imagegen.E031"]),
        ({COVER: {"shape": (float("inf"), 1)}}, ["imagegen.E031"]),
        ({COVER: {"shape": (True, 1)}}, ["imagegen.E031"]),
        ({COVER: {"candidates": 0}}, ["imagegen.E031"]),
        ({COVER: {"candidates": 5}}, ["imagegen.E031"]),
        ({COVER: {"candidates": 2.0}}, ["imagegen.E031"]),
        ({COVER: {"candidates": True}}, ["imagegen.E031"]),
        ({COVER: {"review": "yes"}}, ["imagegen.E031"]),
        # Several problems of one declaration are each reported.
        (
            {COVER: {"prompt": "{x}", "alt_field": "x", "candidates": 9}},
            ["imagegen.E029", "imagegen.E030", "imagegen.E031"],
        ),
        # Good ones.
        ({}, []),
        ({COVER: {}}, []),
        ({COVER: None}, ["imagegen.E027"]),
        (
            {
                COVER: {
                    "prompt": "Editorial photo: {title}. {summary}",
                    "resolution": "2k",
                    "aspect_ratio": "16:9",
                    "shape": (1200, 630),
                    "candidates": 4,
                    "alt_field": "cover_alt",
                    "review": True,
                },
                "imagegen_content_tests.Article.attachment": {"candidates": 1},
                PORTRAIT: {"prompt": "Portrait of {name}"},
            },
            [],
        ),
    ],
)
def test_setting_declarations_are_checked(settings, image_fields, expected):
    assert field_ids(settings, image_fields) == expected


def test_a_bad_declaration_leaves_the_others_usable(settings):
    settings.IMAGEGEN = {"IMAGE_FIELDS": {COVER: {"candidates": 9}, PORTRAIT: {"prompt": "{name}"}}}
    assert [d.key for d in declarations()] == [PORTRAIT]
    with pytest.raises(ImagegenConfigurationError, match="candidates"):
        declaration_for(Article, "cover")
    assert declaration_for(Profile, "portrait").prompt == "{name}"


def test_foreign_key_needs_its_adapter(settings):
    """E032: a FK to GeneratedImage when the adapter makes Wagtail images."""
    settings.IMAGEGEN = {
        "ASSET_ADAPTER": "tests.test_field_declarations.OtherAdapter",
        "IMAGE_FIELDS": {PORTRAIT: {}, COVER: {}},
    }
    messages = [m for m in check_settings() if m.id == "imagegen.E032"]
    assert len(messages) == 1  # the file field copies any adapter's assets
    assert "GeneratedImageAdapter" in messages[0].hint


class OtherAdapter:
    """An adapter that is not GeneratedImageAdapter (for E032)."""


@pytest.fixture
def admin_site():
    """An admin site of the test's own, found by the registry like any other."""
    site = admin.AdminSite(name="fields-test")
    yield site
    # all_sites holds it weakly, and pytest keeps the test's locals alive.
    all_sites.discard(site)


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"cover": {"prompt": "{title}"}}, []),
        (["cover"], []),
        (("cover", "attachment"), []),
        ({"cover": None}, []),
        ({"nope": {}}, ["imagegen.E027"]),
        ({"cover": "prompt"}, ["imagegen.E027"]),
        ("cover", ["imagegen.E027"]),
        ({"title": {}}, ["imagegen.E028"]),
        ({"cover": {"prompt": "{title.__dict__}"}}, ["imagegen.E029"]),
        ({"cover": {"alt_field": "summary", "candidates": 0}}, ["imagegen.E031"]),
    ],
)
def test_admin_declarations_are_checked(settings, admin_site, attribute, expected):
    class ArticleAdmin(admin.ModelAdmin):
        imagegen_fields = attribute

    admin_site.register(Article, ArticleAdmin)
    assert field_ids(settings, {}) == expected


def test_the_setting_goes_over_the_admin_option_by_option(settings, admin_site):
    class ArticleAdmin(admin.ModelAdmin):
        imagegen_fields = {
            "cover": {"prompt": "{title}", "candidates": 3, "alt_field": "cover_alt"}
        }

    admin_site.register(Article, ArticleAdmin)
    settings.IMAGEGEN = {"IMAGE_FIELDS": {COVER: {"candidates": 2, "review": True}}}
    declaration = declaration_for(Article, "cover")
    assert (
        declaration.prompt,
        declaration.candidates,
        declaration.alt_field,
        declaration.review,
    ) == (
        "{title}",
        2,
        "cover_alt",
        True,
    )
    assert len(declaration.sources) == 2


@pytest.mark.parametrize("how", ["model", "instance", "proxy", "proxy instance"])
def test_declaration_for_any_form_of_the_model(settings, how):
    settings.IMAGEGEN = {"IMAGE_FIELDS": {COVER: {"alt_field": "cover_alt"}}}
    subject = {
        "model": Article,
        "instance": Article(title="x"),
        "proxy": ArticleProxy,
        "proxy instance": ArticleProxy(title="x"),
    }[how]
    declaration = declaration_for(subject, "cover")
    assert declaration.key == COVER
    assert isinstance(declaration.target, FileTarget)
    assert declaration.target.alt_field == "cover_alt"
    assert declaration_for(subject, "attachment") is None


def test_targets_by_field_kind(settings):
    settings.IMAGEGEN = {
        "IMAGE_FIELDS": {PORTRAIT: {}, "imagegen_content_tests.Article.attachment": {}}
    }
    assert isinstance(declaration_for(Profile, "portrait").target, GeneratedImageTarget)
    assert isinstance(declaration_for(Article, "attachment").target, FileTarget)
    assert declaration_for(Profile, "portrait").target.describe() == (
        "imagegen_content_tests.Profile.portrait (generated image)"
    )


@pytest.mark.parametrize(
    ("options", "supported", "expected"),
    [
        ({"aspect_ratio": "3:4"}, ("auto", "1:1", "16:9"), "3:4"),
        ({"shape": (1200, 630)}, ("auto", "1:1", "4:3", "3:4", "16:9", "9:16"), "16:9"),
        ({"shape": (1080, 1350)}, ("auto", "1:1", "4:3", "3:4", "16:9", "9:16"), "3:4"),
        ({"shape": (500, 500)}, ("auto", "1:1", "4:3", "3:4", "16:9", "9:16"), "1:1"),
        ({"shape": (300, 1000)}, ("auto", "1:1", "4:3", "3:4", "16:9", "9:16"), "9:16"),
        ({"shape": (1200, 630)}, ("auto", "1:1", "4:3"), "4:3"),  # nearest the provider has
        ({"shape": (1200, 630)}, ("auto",), "auto"),
        ({}, ("auto", "1:1"), "auto"),
    ],
)
def test_default_aspect_ratio(settings, options, supported, expected):
    settings.IMAGEGEN = {"IMAGE_FIELDS": {COVER: options}}
    assert declaration_for(Article, "cover").aspect_ratio_for(supported) == expected


def test_declarations_of_one_model_in_field_order(settings):
    settings.IMAGEGEN = {
        "IMAGE_FIELDS": {
            "imagegen_content_tests.Article.banner": {},
            PORTRAIT: {},
            COVER: {},
            "imagegen_content_tests.Article.attachment": {"candidates": 0},  # invalid: left out
        }
    }
    for subject in (Article, Article(title="x"), ArticleProxy):
        assert [d.field_name for d in declarations_for(subject)] == ["cover", "banner"]
    assert [d.field_name for d in declarations_for(Profile)] == ["portrait"]
