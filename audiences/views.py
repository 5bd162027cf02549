"""Audience and import pages (thin: the import lives in audiences/imports.py)."""

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from activation_manager.selectors import deleted_audiences
from audiences import hashed, imports, selectors, services, sniffing
from audiences.forms import AudienceUploadForm, ImportOptionsForm, MappingForm, ReimportForm
from audiences.models import Audience, ImportJob, PlatformDeletion
from audiences.services import destination
from platforms import matchkeys
from platforms.models import Platform
from syncs import selectors as sync_selectors

OUTPUT_KEY_LABELS = {**matchkeys.KEY_LABELS, "dob_year": "Birth year", "dob_month": "Birth month",
                     "dob_day": "Birth day", "maid": "Mobile advertiser ID (MAID)"}


def gone_while_watching(request, being_deleted: bool):
    """A page polling an import or a run of an audience deleted meanwhile (in another tab, say): send it to
    the audience list with a word on why, instead of polling a 404 forever. None when that is not the case."""
    if not (request.htmx and being_deleted):
        return None
    messages.info(request, "That audience was deleted.")
    return HttpResponseClientRedirect(reverse("audience_list"))


def _own_imports():
    """Imports, less those of audiences being deleted (the caller adds ``owner=request.user``)."""
    return ImportJob.objects.select_related("audience").exclude(audience__status=Audience.Status.DELETING)


def _redirect(request, url):
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _create_import(request, form, audience):
    upload = form.cleaned_data.get("file")
    if upload:
        return imports.create_import(owner=request.user, audience=audience, upload=upload, filename=upload.name)
    return imports.create_import_from_path(owner=request.user, audience=audience, path=imports.sample_file_path())


def _upload_refused(request) -> str:
    """The message of an upload stopped at the size limit while it streamed in (audiences.uploads)."""
    if request.method != "POST":
        return ""
    request.POST  # noqa: B018 - parsing the body runs the upload handlers
    return getattr(request, "upload_refused", "")


AUDIENCES_PER_PAGE = 50


@require_GET
def audience_list(request):
    latest = ImportJob.objects.filter(audience=OuterRef("pk")).order_by("-created_at", "-id")
    audiences = Audience.objects.visible().filter(owner=request.user).annotate(
        last_import_at=Subquery(latest.values("created_at")[:1]),
        last_import_status=Subquery(latest.values("status")[:1]),
    )
    page = Paginator(audiences, AUDIENCES_PER_PAGE).get_page(request.GET.get("page"))
    deleted = deleted_audiences(request.user)
    return render(request, "audiences/audience_list.html", {"audiences": page.object_list, "page": page,
                                                            "deleted": deleted,
                                                            "deleted_pending": any(d.worth_polling for d in deleted)})


@require_http_methods(["GET", "POST"])
def audience_create(request):
    form = AudienceUploadForm(request.POST or None, request.FILES or None, upload_refused=_upload_refused(request))
    if request.method == "POST" and form.is_valid():
        # No transaction around the file copy (a big upload would hold SQLite's write lock): an unusable
        # file deletes the audience it was meant to create instead.
        audience = Audience.objects.create(
            owner=request.user, name=form.cleaned_data["name"], description=form.cleaned_data["description"],
            default_country=form.cleaned_data["default_country"],
        )
        try:
            job = _create_import(request, form, audience)
        except BaseException:
            audience.delete()
            raise
        if job.status == ImportJob.Status.FAILED:
            form.add_error("file", job.error_message)
            audience.delete()
        else:
            return _redirect(request, reverse("import_mapping", kwargs={"import_pk": job.pk}))
    return render(request, "audiences/audience_create.html", {"form": form})


@require_http_methods(["GET", "POST"])
def audience_import(request, audience_pk):
    audience = get_object_or_404(Audience.objects.visible(), pk=audience_pk, owner=request.user)
    form = ReimportForm(request.POST or None, request.FILES or None, audience=audience,
                        upload_refused=_upload_refused(request))
    if request.method == "POST" and form.is_valid():
        if ImportJob.objects.filter(audience=audience, status__in=[ImportJob.Status.QUEUED,
                                                                    ImportJob.Status.RUNNING]).exists():
            form.add_error(None, "An import into this audience is still running; wait for it to finish.")
        else:
            if form.cleaned_data["default_country"] != audience.default_country:
                audience.default_country = form.cleaned_data["default_country"]
                audience.save(update_fields=["default_country", "updated_at"])
            job = _create_import(request, form, audience)
            if job.status == ImportJob.Status.FAILED:
                form.add_error("file", job.error_message)
            else:
                return _redirect(request, reverse("import_mapping", kwargs={"import_pk": job.pk}))
    return render(request, "audiences/audience_import.html", {"form": form, "audience": audience})


@never_cache  # the page shows values from the file: no browser or proxy keeps a copy
@require_http_methods(["GET", "POST"])
def import_mapping(request, import_pk):
    """The mapping page: the file as read (encoding in words, three values per column), which key each column holds,
    the person key, and what the import would change, before anything is imported. A POST with ``preview`` (sent
    by the page whenever a choice changes) only shows the result of the choices."""
    job = get_object_or_404(_own_imports(), pk=import_pk, owner=request.user)
    detail = reverse("audience_detail", kwargs={"audience_pk": job.audience_id})
    if job.status != ImportJob.Status.UPLOADED:
        return _redirect(request, detail)
    posted = request.POST if request.method == "POST" else None
    preview = posted is not None and bool(posted.get("preview"))
    notice = ""
    encoding = job.encoding
    if posted is not None and posted.get("encoding"):
        try:
            encoding = sniffing.canonical_encoding(posted["encoding"])
        except ValueError:
            notice, preview = "Choose one of the encodings listed.", True
    missing = ""
    try:
        read = imports.read_as(job, encoding)
    except imports.UnusableFile as exc:
        if encoding != job.encoding:
            notice = f"Read as {sniffing.encoding_label(encoding)}, the file cannot be used: {exc}"
            encoding, preview = job.encoding, True
        try:
            read = imports.read_as(job, encoding)
        except imports.UnusableFile as exc:  # the file itself is gone: the page can still say so, but not import
            missing = notice = str(exc)
            read = sniffing.Sniffed(encoding=job.encoding, delimiter=job.delimiter, headers=job.headers)
    same_columns = len(read.headers) == len(job.headers)
    if not same_columns:
        notice = (f"Read as {sniffing.encoding_label(encoding)}, the file has {len(read.headers)} columns instead of "
                  f"{len(job.headers)}: they were matched again from their headers.")
        preview = True
    # What the page starts from: the choices just made, else the job's (the guess, or the last import's mapping).
    if posted is not None and same_columns:
        mapping = {str(i): key if (key := posted.get(f"col_{i}", "")) in imports.MAPPING_KEYS else ""
                   for i in range(len(read.headers))}
    elif same_columns:
        mapping = dict(job.column_mapping)
    else:
        mapping = imports.initial_mapping(job.audience, read)
    bound = posted if posted is not None and not preview else None
    form = MappingForm(bound, job=job, headers=read.headers,
                       initial={f"col_{i}": key for i, key in mapping.items()})
    options = ImportOptionsForm(bound, job=job, mapping=mapping, initial={
        "encoding": encoding, "person_key": _person_key_choice(job, mapping, posted),
        "confirm_reidentify": bool(posted and posted.get("confirm_reidentify"))})
    if bound is not None and form.is_valid() & options.is_valid():
        try:
            if missing:
                raise imports.UnusableFile(missing)
            if encoding != job.encoding or read.headers != job.headers:
                imports.change_encoding(job, read)
            imports.start_import(job, form.mapping(), person_key=options.cleaned_data["person_key"] or None)
        except (ValueError, imports.UnusableFile) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Importing “{job.original_filename}” into {job.audience.name}.")
            return _redirect(request, detail)
    person_key = (options.data.get("person_key") if bound is not None else None) or options["person_key"].initial
    notes = selectors.mapping_notes(job=job, headers=read.headers, mapping=mapping,
                                    person_key=person_key if person_key in matchkeys.PERSON_KEYS else "")
    samples = sniffing.sample_values(read.rows, len(read.headers))
    columns = [(form[f"col_{i}"], header, samples[i]) for i, header in enumerate(read.headers)]
    return render(request, "audiences/import_mapping.html", {
        "form": form, "options": options, "job": job, "audience": job.audience, "columns": columns,
        "notes": notes, "notice": notice, "encoding": encoding,
        "encoding_label": sniffing.encoding_label(encoding), "detected_label": sniffing.encoding_label(job.encoding),
        "delimiter_label": sniffing.DELIMITER_LABELS.get(read.delimiter, repr(read.delimiter)),
        "hashed_expected": hashed.EXPECTED_FORM,
    })


def _person_key_choice(job, mapping: dict[str, str], posted) -> str:
    """The person key the page shows: the one just chosen, else the job's, else the audience's, else the file's
    suggestion, among the keys the mapping offers."""
    offered = imports.mapped_person_keys(mapping)
    for key in ((posted or {}).get("person_key"), job.person_key, job.audience.person_key):
        if key in offered:
            return key
    return imports.default_person_key(mapping) if offered else ""


def _progress_context(job):
    return {"job": job, "audience": job.audience, "percent": imports.progress_percent(job),
            "running": job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING),
            "rejected_rows": job.rejected_rows.all()[:20] if job.status != ImportJob.Status.UPLOADED else []}


@require_GET
def import_progress(request, import_pk):
    try:
        job = get_object_or_404(_own_imports(), pk=import_pk, owner=request.user)
    except Http404:
        deleted = ImportJob.objects.filter(pk=import_pk, owner=request.user,
                                           audience__status=Audience.Status.DELETING)
        if gone := gone_while_watching(request, deleted.exists()):
            return gone
        raise
    context = _progress_context(job)
    response = render(request, "audiences/partials/import_progress.html", context)
    if request.htmx and not context["running"]:
        # The import ended while the page was polling: stop polling (286) and reload the whole page so
        # size, coverage and status are fresh too.
        response.status_code = 286
        response["HX-Refresh"] = "true"
    return response


@require_GET
def audience_detail(request, audience_pk):
    audience = get_object_or_404(Audience.objects.visible(), pk=audience_pk, owner=request.user)
    latest = audience.imports.exclude(status=ImportJob.Status.UPLOADED).first()
    pending = audience.imports.filter(status=ImportJob.Status.UPLOADED).first()
    coverage = [(matchkeys.KEY_LABELS.get(key, "First + last name + postal code"), audience.key_coverage.get(key, 0))
                for key in ("email", "phone", "name_zip", "maid", "external_id", "first_name", "last_name",
                            "postal_code", "city", "state", "country", "date_of_birth", "gender")]
    size = audience.member_count or 0
    coverage = [(label, count, round(count * 100 / size) if size else 0) for label, count in coverage]
    platforms = []
    for platform in Platform.objects.filter(active=True).order_by("name"):
        try:
            accepted = matchkeys.accepted_keys(platform.code)
        except ValueError:
            continue
        platforms.append((platform, accepted))
    # One row per key a platform takes, one column per platform.
    key_rows = [(OUTPUT_KEY_LABELS.get(key, key), [key in accepted for _, accepted in platforms])
                for key in matchkeys.OUTPUT_KEYS if any(key in accepted for _, accepted in platforms)]
    platform_copies = [f"{s.connection.platform.name} · {s.connection.label}"
                       for s in audience.syncs.select_related("connection__platform").exclude(platform_audience_id="")]
    context = {"audience": audience, "latest": latest, "pending": pending, "coverage": coverage,
               "panel": sync_selectors.audience_sync_panel(audience),
               "platforms": [p for p, _ in platforms], "key_rows": key_rows, "platform_copies": platform_copies}
    context.update(_import_counts_context(audience))
    if latest:
        context.update(_progress_context(latest))
        context["audience"] = audience
    return render(request, "audiences/audience_detail.html", context)


def _import_counts_context(audience) -> dict:
    """What the audience page's per-column and per-platform tables show (their partials)."""
    imported = audience.imports.filter(status=ImportJob.Status.SUCCEEDED).first()
    return {"counted_import": imported, "column_counts": selectors.column_counts(imported),
            "platform_coverage": selectors.platform_coverage(audience) if audience.member_count else []}


class _Echo:
    def write(self, value):
        return value


@require_GET
def import_rejections_csv(request, import_pk):
    job = get_object_or_404(_own_imports(), pk=import_pk, owner=request.user)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in imports.rejections_csv_rows(job)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected-rows.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def audience_confirm_delete(request, audience_pk):
    """What deleting the audience would delete, here and on each platform (with its platform copies or without:
    ``on_platforms``), with the button that does it. Nothing is deleted by looking."""
    audience = get_object_or_404(Audience.objects.visible(), pk=audience_pk, owner=request.user)
    preview = services.deletion_preview(audience=audience, on_platforms=bool(request.GET.get("on_platforms")))
    return render(request, "audiences/audience_delete.html", {"audience": audience, "preview": preview})


@require_POST
def audience_delete(request, audience_pk):
    """Delete the audience (and, with ``on_platforms``, its copies on the platforms), as previewed by
    audience_confirm_delete; afterwards the audience list shows what became of each copy."""
    audience = get_object_or_404(Audience.objects.visible(), pk=audience_pk, owner=request.user)
    on_platforms = bool(request.POST.get("on_platforms"))
    copies = [destination(s) for s in audience.syncs.select_related("connection__platform") if s.platform_audience_id]
    cleaned_up = services.delete_audience(audience=audience, on_platforms=on_platforms)
    fates = PlatformDeletion.objects.filter(former_audience_id=audience.pk, owner=request.user)
    message = f"Deleted the audience “{audience.name}”."
    if cleaned_up:
        message += f" Deleting it on {', '.join(cleaned_up)} in the background."
    not_reachable = [f.destination for f in fates if f.status == PlatformDeletion.Status.FAILED]
    if not_reachable:
        message += f" Not deleted on {', '.join(not_reachable)}: the connection is not active."
    if cleaned_up or not_reachable:
        message += " “Deleted audiences” below shows what became of each copy."
    elif copies:
        message += f" Its {'copy' if len(copies) == 1 else 'copies'} on {', '.join(copies)} " \
                   f"{'stays' if len(copies) == 1 else 'stay'} there."
    messages.success(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("audience_list"))
    return redirect("audience_list")
