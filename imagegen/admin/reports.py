"""The cost report: spend per user, provider, resolution and month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from .. import conf, services

PERMISSION = "imagegen.view_cost_report"


class PeriodForm(forms.Form):
    since = forms.DateField(
        label=pgettext_lazy("start of a date range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=gettext_lazy("Until (inclusive)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error(
                "until",
                _("The end (%(until)s) is before the start (%(since)s): swap them.")
                % {"until": until.isoformat(), "since": since.isoformat()},
            )
        return cleaned

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The period as aware datetimes in the site's time zone, end exclusive."""
        if not self.is_valid():
            return None, None
        since, until = self.cleaned_data["since"], self.cleaned_data["until"]
        zone = timezone.get_current_timezone()
        start = datetime.combine(since, time.min, zone) if since else None
        end = datetime.combine(until, time.max, zone) if until else None
        return start, end


def cost_report_view(model_admin: admin.ModelAdmin) -> Callable[[HttpRequest], HttpResponse]:
    """The report page, for users with ``imagegen.view_cost_report``."""

    def view(request: HttpRequest) -> HttpResponse:
        base: dict[str, Any] = {
            **model_admin.admin_site.each_context(request),
            "title": _("Image generation costs"),
            "opts": model_admin.opts,
        }
        if not request.user.has_perm(PERMISSION):
            # The admin's bare 403 page would not say why: this one does.
            refusal = _(
                "The cost report needs the permission “Can see the cost report” "
                "(imagegen.view_cost_report). Ask an administrator to grant it."
            )
            return TemplateResponse(
                request,
                "admin/imagegen/generationjob/cost_report.html",
                {**base, "refusal": refusal},
                status=403,
            )
        form = PeriodForm(request.GET or None)
        since, until = form.bounds()
        report = services.reports.spend(since=since, until=until)
        labels = {
            "user": _("Per user"),
            "provider": _("Per provider"),
            "resolution": _("Per resolution"),
            "month": _("Per month"),
        }
        sections = [
            {
                "key": key,
                "title": labels[key],
                "rows": rows,
                "total": services.reports.total(rows),
            }
            for key, rows in report.items()
        ]
        context: dict[str, Any] = {
            **base,
            "form": form,
            # An unusable range is shown with its errors, over all dates.
            "all_dates": form.is_bound and not form.is_valid(),
            "sections": sections,
            "undelivered": services.reports.charged_not_delivered(since=since, until=until),
            "currency": conf.get_setting("CURRENCY"),
        }
        return TemplateResponse(request, "admin/imagegen/generationjob/cost_report.html", context)

    return view
