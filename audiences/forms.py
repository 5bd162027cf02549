"""Forms of the audience pages: validation only (the work is in audiences/imports.py)."""

from functools import lru_cache

import pycountry
from django import forms
from django.conf import settings

from audiences import hashed, imports, sniffing, uploads
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
        help_text="CSV or TSV with a header row (UTF-8, UTF-16, Windows-1252 / Latin-1 or another common encoding; "
                  "comma, semicolon or tab separated).",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv,text/plain"}),
    )
    use_sample = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, upload_refused: str = "", **kwargs):
        """``upload_refused``: the message of an upload stopped at the size limit while it streamed in
        (request.upload_refused, set by audiences.uploads.UploadSizeLimitHandler)."""
        super().__init__(*args, **kwargs)
        self.upload_refused = upload_refused
        self.fields["file"].help_text += f" At most {uploads.size_text(settings.MAX_UPLOAD_BYTES)}."
        # The page checks the size before sending (static/js/app.js); the server stops at the limit anyway.
        self.fields["file"].widget.attrs.update({"data-max-bytes": str(settings.MAX_UPLOAD_BYTES),
                                                 "data-too-large": uploads.too_large_message()})

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if self.upload_refused:
            self.add_error("file", self.upload_refused)
        elif not upload and not cleaned.get("use_sample"):
            self.add_error("file", "Choose a CSV file to upload, or use the sample file.")
        if upload and upload.size > settings.MAX_UPLOAD_BYTES:
            self.add_error("file", uploads.too_large_message())
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

    SAMPLE_NAME = "Sample customers"
    SAMPLE_COUNTRY = "US"  # the sample file's phones and addresses are mostly American

    def __init__(self, data=None, *args, **kwargs):
        # "Use the sample file" is a one-click try: what the marketer left blank gets the sample's own values.
        if data is not None and data.get("use_sample"):
            data = data.copy()
            if not data.get("name", "").strip():
                data["name"] = self.SAMPLE_NAME
            if not data.get("default_country"):
                data["default_country"] = self.SAMPLE_COUNTRY
        super().__init__(data, *args, **kwargs)

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


KEY_CHOICES = [
    ("", "— ignore this column —"),
    ("Match keys", [(key, matchkeys.KEY_LABELS[key]) for key in matchkeys.KEYS]),
    ("Already hashed (SHA-256)", [(key, hashed.LABELS[key]) for key in hashed.KEYS]),
]
PERSON_KEY_CHOICES = [(key, matchkeys.PERSON_KEY_LABELS[key]) for key in matchkeys.PERSON_KEYS]


class MappingForm(forms.Form):
    """One select per column of the file: which match key it holds, already hashed or not (or ignore it)."""

    def __init__(self, *args, job, headers: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.headers = job.headers if headers is None else headers
        for index, header in enumerate(self.headers):
            label = header or f"{index + 1} (no header)"
            field = forms.ChoiceField(
                label=f"Column {label}", choices=KEY_CHOICES, required=False,
                initial=job.column_mapping.get(str(index), ""),
                widget=forms.Select(attrs={"data-column": header}),
            )
            # The page's rows sit under a "Column in your file" header: they show the header alone, and keep
            # "Column ..." as the select's accessible name (and in error messages).
            field.column_label = label
            self.fields[f"col_{index}"] = field

    def mapping(self) -> dict[str, str]:
        return {str(i): self.cleaned_data.get(f"col_{i}") or "" for i in range(len(self.headers))}

    def clean(self):
        cleaned = super().clean()
        used = {}
        for index in range(len(self.headers)):
            key = cleaned.get(f"col_{index}")
            if not key:
                continue
            base = hashed.base_key(key)
            if base in used:
                self.add_error(f"col_{index}", f"{matchkeys.KEY_LABELS[base]} is already mapped to column "
                                               f"“{self.headers[used[base]] or used[base] + 1}”.")
            used[base] = index
        if not used and not self.errors:
            raise forms.ValidationError("Map at least one column to a match key (email, phone, …).")
        return cleaned


class ImportOptionsForm(forms.Form):
    """The rest of the mapping page: the encoding the file is read in, the person key, and, when the person key of
    an audience with members changes, the marketer's confirmation. ``mapping`` is the column mapping chosen with
    it (the person key must be one of its columns)."""

    # Not required: a post without them (an older page, a script) keeps the detected encoding and the person key
    # the page would have shown.
    encoding = forms.ChoiceField(label="Encoding", choices=sniffing.ENCODING_CHOICES, required=False)
    person_key = forms.ChoiceField(label="Person key", choices=PERSON_KEY_CHOICES, required=False)
    confirm_reidentify = forms.BooleanField(label="Re-identify the members", required=False)

    def __init__(self, *args, job, mapping: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.job, self.mapping = job, mapping
        offered = imports.mapped_person_keys(mapping)
        if offered:
            self.fields["person_key"].choices = [(k, v) for k, v in PERSON_KEY_CHOICES if k in offered]
        else:  # no column names a person on its own: rows are told apart by name and address
            self.fields["person_key"].choices = [("", "— no column identifies a person on its own —")]

    def reidentifies(self, person_key: str) -> int:
        """The members a change to ``person_key`` re-identifies (0 when it changes nothing)."""
        audience = self.job.audience
        if audience.member_count and audience.person_key and person_key != audience.person_key:
            return audience.member_count
        return 0

    def clean(self):
        cleaned = super().clean()
        cleaned["encoding"] = cleaned.get("encoding") or self.initial.get("encoding") or self.job.encoding
        person_key = cleaned["person_key"] = cleaned.get("person_key") or self.initial.get("person_key") or ""
        if not person_key:
            return cleaned
        try:
            imports.clean_person_key(self.mapping, person_key)
        except ValueError as exc:
            self.add_error("person_key", str(exc))
            return cleaned
        members = self.reidentifies(person_key)
        if members and not cleaned.get("confirm_reidentify"):
            self.add_error("confirm_reidentify", f"Tick the box to re-identify all {members:,} members by "
                                                 f"{matchkeys.PERSON_KEY_LABELS[person_key]}, or keep the person key "
                                                 "as it is.")
        return cleaned
