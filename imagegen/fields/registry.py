"""Which model fields can be generated, and with which defaults.

A site declares a field in either of two places (both may be used):

- the setting, keyed by ``"app_label.Model.field"``::

      IMAGEGEN = {"IMAGE_FIELDS": {
          "blog.Article.cover": {
              "prompt": "Editorial photo: {title}. {summary}",
              "shape": (1200, 630),
              "candidates": 3,
              "alt_field": "cover_alt",
          },
      }}

- a ``ModelAdmin`` attribute, :data:`ADMIN_ATTRIBUTE`, a dict of field name
  to options (or a list of field names, all with the default options), on a
  model admin registered with any admin site::

      class ArticleAdmin(admin.ModelAdmin):
          imagegen_fields = {"cover": {"prompt": "Editorial photo: {title}."}}

When both declare a field, the setting's options go over the admin's one by
one, so a site can change a reusable app's defaults without subclassing its
admin. Every option (:data:`OPTIONS`) is checked by the system checks
(:mod:`imagegen.checks.fields`); :func:`declaration_for` raises
:class:`~imagegen.exceptions.ImagegenConfigurationError` for a field whose
declaration they report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .. import conf
from ..choices import AspectRatio, Resolution
from ..exceptions import ImagegenConfigurationError
from . import prompts

if TYPE_CHECKING:
    from .targets import Target

#: The ``ModelAdmin`` attribute that declares generable fields.
ADMIN_ATTRIBUTE = "imagegen_fields"
#: Every option a declaration may set, with its default.
OPTIONS: dict[str, Any] = {
    # Prompt template: plain text with {field} placeholders (imagegen.fields.prompts).
    "prompt": "",
    # Resolution and aspect ratio of the jobs; None: create_job's default
    # resolution, and the ratio nearest to "shape" (else the provider's "auto").
    "resolution": None,
    "aspect_ratio": None,
    # The image's expected (width, height), any unit: picks the default ratio.
    "shape": None,
    # Jobs (one image each) per request, for the editor to choose from.
    "candidates": 1,
    # A CharField or TextField of the same model that takes the alt text.
    "alt_field": None,
    # Whether a result waits for an editor's approval before it is attached (bulk fill).
    "review": False,
}
MAX_CANDIDATES = 4


@dataclass(frozen=True)
class FieldDeclaration:
    """One generable field and its options, after merging and checking."""

    model: type[models.Model]
    field_name: str
    prompt: str = ""
    resolution: str | None = None
    aspect_ratio: str | None = None
    shape: tuple[int, int] | None = None
    candidates: int = 1
    alt_field: str | None = None
    review: bool = False
    #: Where the declaration comes from, for messages: the setting, the admins.
    sources: tuple[str, ...] = dataclass_field(default=(), compare=False)

    @property
    def key(self) -> str:
        """``"app_label.Model.field"``, as the setting writes it."""
        return f"{self.model._meta.label}.{self.field_name}"

    @property
    def field(self) -> models.Field:
        return self.model._meta.get_field(self.field_name)

    @property
    def target(self) -> Target:
        """What fills the field (:mod:`imagegen.fields.targets`)."""
        from .targets import target_for

        target = target_for(self.field, alt_field=self.alt_field)
        if target is None:  # reported by the system checks
            raise ImagegenConfigurationError(f"{self.key}: imagegen cannot fill this field type.")
        return target

    def aspect_ratio_for(self, supported: tuple[str, ...]) -> str:
        """The declared ratio; else the one of ``supported`` (a provider's
        ratios) nearest to ``shape``; else ``"auto"``."""
        if self.aspect_ratio:
            return self.aspect_ratio
        fixed = [ratio for ratio in supported if ratio != AspectRatio.AUTO]
        if self.shape and fixed:
            wanted = math.log(self.shape[0] / self.shape[1])
            return min(fixed, key=lambda ratio: abs(math.log(_ratio(ratio)) - wanted))
        return AspectRatio.AUTO


@dataclass(frozen=True)
class Problem:
    """A declaration the checks report; ``kind`` picks the check id."""

    kind: str
    key: str
    message: str
    hint: str = ""


# Kinds of problems (imagegen.checks.fields maps them to ids).
MALFORMED = "malformed"  # not a dict, a bad key, an unknown model, field or option
UNSUPPORTED = "unsupported"  # no target fills this field type
TEMPLATE = "template"  # the prompt template
ALT_FIELD = "alt_field"
VALUE = "value"  # resolution, aspect ratio, shape, candidates, review
ADAPTER = "adapter"  # the target needs another ASSET_ADAPTER


@dataclass
class _Raw:
    key: str
    model: type[models.Model] | None
    field_name: str
    options: dict[str, Any]
    sources: list[str]


def declarations() -> list[FieldDeclaration]:
    """Every valid declaration (the checks report the others), in key order."""
    found, _problems = _collect()
    return [found[key] for key in sorted(found)]


def declarations_for(model: type[models.Model] | models.Model) -> list[FieldDeclaration]:
    """The valid declarations of one model's fields (a proxy's are its
    concrete model's), in the model's field order: what an admin form shows."""
    model = model if isinstance(model, type) else type(model)
    concrete = model._meta.concrete_model or model
    order = {field.name: index for index, field in enumerate(concrete._meta.get_fields())}
    found = [d for d in declarations() if d.model is concrete]
    return sorted(found, key=lambda declaration: order.get(declaration.field_name, len(order)))


def declaration_for(
    model: type[models.Model] | models.Model, field_name: str
) -> FieldDeclaration | None:
    """The declaration of ``model.field_name``, or None when the field is not
    declared. Raises ImagegenConfigurationError when it is declared wrongly."""
    model = model if isinstance(model, type) else type(model)
    concrete = model._meta.concrete_model or model
    key = f"{concrete._meta.label}.{field_name}"
    found, problems = _collect()
    if key in found:
        return found[key]
    mine = [problem for problem in problems if problem.key == key]
    if mine:
        raise ImagegenConfigurationError(f"{key}: {mine[0].message}")
    return None


def problems() -> list[Problem]:
    """Every problem of every declaration: what the system checks report."""
    return _collect()[1]


def _collect() -> tuple[dict[str, FieldDeclaration], list[Problem]]:
    problems: list[Problem] = []
    raw: dict[str, _Raw] = {}
    # The admins first: the setting's options go over theirs.
    for item in [*_from_admins(problems), *_from_setting(problems)]:
        if item.key in raw:
            raw[item.key].options.update(item.options)
            raw[item.key].sources.extend(item.sources)
        else:
            raw[item.key] = item
    found = {}
    for item in raw.values():
        mine = _validate(item)
        problems.extend(mine)
        if not mine and item.model is not None:
            found[item.key] = _declaration(item)
    return found, problems


def _from_setting(problems: list[Problem]) -> Iterator[_Raw]:
    value = conf.get_setting("IMAGE_FIELDS")
    source = "IMAGEGEN['IMAGE_FIELDS']"
    if not isinstance(value, Mapping):
        problems.append(
            Problem(
                MALFORMED, source, f"{source} must be a dict of 'app_label.Model.field': options."
            )
        )
        return
    for key, options in value.items():
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) != 3 or not all(parts):
            problems.append(
                Problem(
                    MALFORMED,
                    str(key),
                    f"{source}: the key {key!r} is not 'app_label.Model.field'.",
                )
            )
            continue
        try:
            model = apps.get_model(parts[0], parts[1])
        except LookupError:
            problems.append(
                Problem(
                    MALFORMED, key, f"{source}[{key!r}]: there is no model {parts[0]}.{parts[1]}."
                )
            )
            continue
        yield _raw(model, parts[2], options, f"{source}[{key!r}]", problems)


def _from_admins(problems: list[Problem]) -> Iterator[_Raw]:
    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib.admin.sites import all_sites

    for site in list(all_sites):
        for model, model_admin in site._registry.items():
            value = getattr(model_admin, ADMIN_ATTRIBUTE, None)
            if not value:
                continue
            source = f"{type(model_admin).__qualname__}.{ADMIN_ATTRIBUTE}"
            if isinstance(value, list | tuple):
                value = dict.fromkeys(value)
            if not isinstance(value, Mapping):
                problems.append(
                    Problem(
                        MALFORMED,
                        model._meta.label,
                        f"{source} must be a dict of field name: options, "
                        "or a list of field names.",
                    )
                )
                continue
            for name, options in value.items():
                yield _raw(model, str(name), {} if options is None else options, source, problems)


def _raw(
    model: type[models.Model], name: str, options: Any, source: str, problems: list[Problem]
) -> _Raw:
    concrete = model._meta.concrete_model or model
    key = f"{concrete._meta.label}.{name}"
    if not isinstance(options, Mapping):
        problems.append(
            Problem(MALFORMED, key, f"{source}: the options of {name!r} must be a dict.")
        )
        options = {}
    return _Raw(key, concrete, name, dict(options), [source])


def _validate(item: _Raw) -> list[Problem]:
    from .targets import target_class_for

    key, options, model = item.key, item.options, item.model
    where = " and ".join(item.sources)

    def problem(kind: str, message: str, hint: str = "") -> Problem:
        return Problem(kind, key, f"{where}: {message}", hint)

    found = [
        problem(
            MALFORMED,
            f"{name!r} is not an option of a generable field.",
            f"The options: {', '.join(OPTIONS)}.",
        )
        for name in options
        if name not in OPTIONS
    ]
    try:
        target_field = model._meta.get_field(item.field_name)
    except FieldDoesNotExist:
        target_field = None
    if target_field is None or target_field.name != item.field_name:
        # A column name ("author_id") or a reverse relation is no field to fill.
        return [
            *found,
            problem(MALFORMED, f"{model._meta.label} has no field {item.field_name!r}."),
        ]
    target_class = target_class_for(target_field)
    if target_class is None:
        found.append(
            problem(
                UNSUPPORTED,
                f"{key} is a {type(target_field).__name__}, which imagegen cannot fill.",
                "Supported: ImageField and FileField, a ForeignKey to imagegen.GeneratedImage, "
                "to a Wagtail image (imagegen.contrib.wagtail) or a FilerImageField "
                "(imagegen.contrib.filer).",
            )
        )
    else:
        found.extend(
            problem(ADAPTER, message, hint) for message, hint in target_class.adapter_problems()
        )
    template = options.get("prompt", "")
    for message in prompts.field_problems(model, template):
        found.append(
            problem(
                TEMPLATE,
                f"prompt template: {message}.",
                "Placeholders are {name} of the model's own fields.",
            )
        )
    found.extend(
        problem(ALT_FIELD, message)
        for message in _alt_field_problems(model, item.field_name, options.get("alt_field"))
    )
    found.extend(problem(VALUE, message) for message in _value_problems(options))
    return found


def _alt_field_problems(model: type[models.Model], field_name: str, alt: Any) -> list[str]:
    if alt is None:
        return []
    if not isinstance(alt, str) or alt == field_name:
        return [f"alt_field must be the name of another field, not {alt!r}."]
    try:
        alt_field = model._meta.get_field(alt)
    except FieldDoesNotExist:
        return [f"alt_field: {model._meta.label} has no field {alt!r}."]
    if not isinstance(alt_field, models.CharField | models.TextField) or not alt_field.concrete:
        return [
            f"alt_field {alt!r} is a {type(alt_field).__name__}; "
            "alt text needs a CharField or TextField."
        ]
    return []


def _value_problems(options: Mapping[str, Any]) -> list[str]:
    found = []
    resolution = options.get("resolution")
    if resolution is not None and resolution not in Resolution.values:
        found.append(f"resolution {resolution!r} is not one of {', '.join(Resolution.values)}.")
    ratio = options.get("aspect_ratio")
    if ratio is not None and ratio not in AspectRatio.values:
        found.append(f"aspect_ratio {ratio!r} is not one of {', '.join(AspectRatio.values)}.")
    shape = options.get("shape")
    if shape is not None and not (
        isinstance(shape, list | tuple)
        and len(shape) == 2
        and all(
            isinstance(side, int | float)
            and not isinstance(side, bool)
            and side > 0
            and math.isfinite(side)
            for side in shape
        )
    ):
        found.append(f"shape must be (width, height), two positive numbers, not {shape!r}.")
    candidates = options.get("candidates", 1)
    if (
        isinstance(candidates, bool)
        or not isinstance(candidates, int)
        or not 1 <= candidates <= MAX_CANDIDATES
    ):
        found.append(
            f"candidates must be a whole number from 1 to {MAX_CANDIDATES}, not {candidates!r}."
        )
    review = options.get("review", False)
    if not isinstance(review, bool):
        found.append(f"review must be True or False, not {review!r}.")
    return found


def _declaration(item: _Raw) -> FieldDeclaration:
    options = {**OPTIONS, **item.options}
    shape = options["shape"]
    return FieldDeclaration(
        model=item.model,
        field_name=item.field_name,
        prompt=options["prompt"],
        resolution=options["resolution"],
        aspect_ratio=options["aspect_ratio"],
        shape=tuple(shape) if shape else None,
        candidates=options["candidates"],
        alt_field=options["alt_field"],
        review=options["review"],
        sources=tuple(item.sources),
    )


def _ratio(value: str) -> float:
    width, height = value.split(":")
    return int(width) / int(height)
