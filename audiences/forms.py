"""Forms of the audience pages: validation only (the work is in audiences/imports.py)."""

from functools import lru_cache

import pycountry
from django import forms
from django.conf import settings

from audiences.models import Audience
from platforms import matchkeys


@lru_cache(maxsize=1)
def country_choices() -> list[tuple[str, str]]:
    countries = sorted((c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries)
    return [("", "Choose a country…")] + sorted(((code, f"{name} ({code})") for code, name in countries),
                                               key=lambda item: item[1])


class UploadFileMixin(forms.Form):
    file = forms.FileField(
        label="Customer file (CSV)", required=False,
        help_text="CSV or TSV with a header row; UTF-8, UTF-16 or Latin-1; comma, semicolon or tab separated.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv,text/plain"}),
    )
    use_sample = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if not upload and not cleaned.get("use_sample"):
            self.add_error("file", "Choose a CSV file to upload, or use the sample file.")
        if upload and upload.size > settings.MAX_UPLOAD_BYTES:
            self.add_error("file", f"The file is larger than the {settings.MAX_UPLOAD_BYTES // 1024 ** 2:,} MB limit.")
        return cleaned


class AudienceUploadForm(UploadFileMixin):
    name = forms.CharField(label="Name", max_length=200, help_text="For example “Newsletter subscribers”.")
    default_country = forms.ChoiceField(
        label="Default country", choices=country_choices,
        help_text="Used to read phone numbers and addresses that do not name their country.",
    )
    description = forms.CharField(label="Description", required=False, max_length=2000,
                                  widget=forms.Textarea(attrs={"rows": 2}))

    field_order = ["name", "default_country", "description", "file", "use_sample"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the audience a name.")
        return name


class ReimportForm(UploadFileMixin):
    """A new file for an existing audience: it replaces the membership once imported."""

    default_country = forms.ChoiceField(label="Default country", choices=country_choices)

    field_order = ["file", "default_country", "use_sample"]

    def __init__(self, *args, audience: Audience, **kwargs):
        kwargs.setdefault("initial", {"default_country": audience.default_country})
        super().__init__(*args, **kwargs)


KEY_CHOICES = [("", "— ignore this column —")] + [(key, matchkeys.KEY_LABELS[key]) for key in matchkeys.KEYS]


class MappingForm(forms.Form):
    """One select per column of the file: which match key it holds (or ignore it)."""

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        for index, header in enumerate(job.headers):
            label = header or f"{index + 1} (no header)"
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=f"Column {label}", choices=KEY_CHOICES, required=False,
                initial=job.column_mapping.get(str(index), ""),
                widget=forms.Select(attrs={"data-column": header}),
            )

    def mapping(self) -> dict[str, str]:
        return {str(i): self.cleaned_data.get(f"col_{i}") or "" for i in range(len(self.job.headers))}

    def clean(self):
        cleaned = super().clean()
        used = {}
        for index in range(len(self.job.headers)):
            key = cleaned.get(f"col_{index}")
            if not key:
                continue
            if key in used:
                self.add_error(f"col_{index}", f"{matchkeys.KEY_LABELS[key]} is already mapped to column "
                                               f"“{self.job.headers[used[key]] or used[key] + 1}”.")
            used[key] = index
        if not used and not self.errors:
            raise forms.ValidationError("Map at least one column to a match key (email, phone, …).")
        return cleaned
