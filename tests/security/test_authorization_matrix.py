"""Every URL that names an object answers 404 to any user but its owner.

The matrix is generated from the URL conf: each pattern's keyword arguments are resolved to one of
alice's objects by name (``connection_pk``, ``audience_pk``, ``run_pk`` ... or ``pk`` read from the
URL's name). A new URL whose argument the matrix cannot place fails ``test_every_url_argument_is_known``,
so no URL can be forgotten.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audiences.models import Audience, ImportJob, RejectedRow
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync, SyncBatch, SyncRun

# Namespaces whose URLs are not per-user objects (the admin has its own staff checks).
SKIPPED_NAMESPACES = {"admin"}
# Arguments that name shared, non-owned things.
PUBLIC_ARGUMENTS = {"code", "platform_code", "platform"}

# Argument name (or URL-name prefix for a bare ``pk``) -> kind of owned object.
ARGUMENT_KINDS = {
    "connection": "connection",
    "audience": "audience",
    "import": "import_job",
    "job": "import_job",
    "import_job": "import_job",
    "sync_run": "run",
    "run": "run",
    "sync": "sync",
    "batch": "batch",
    "rejected": "import_job",
}


def iter_patterns(resolver=None, prefix="", namespace=None):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            if ns in SKIPPED_NAMESPACES:
                continue
            yield from iter_patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield namespace, entry.name, prefix + str(entry.pattern), entry.pattern.converters


def object_patterns():
    return [
        (namespace, name, route, converters)
        for namespace, name, route, converters in iter_patterns()
        if name and set(converters) - PUBLIC_ARGUMENTS
    ]


def kind_of(argument: str, url_name: str) -> str | None:
    stem = argument.removesuffix("_pk").removesuffix("_id")
    if stem == "pk":
        stem = url_name
    for prefix in sorted(ARGUMENT_KINDS, key=len, reverse=True):
        if stem.startswith(prefix):
            return ARGUMENT_KINDS[prefix]
    return None


@pytest.fixture
def alices_objects(user):
    meta = Platform.objects.get(code="meta")
    connection = Connection.objects.create(owner=user, platform=meta, label="Alice main", config={},
                                           secrets={"access_token": "alice-token-xyz"})
    audience = Audience.objects.create(owner=user, name="Alice VIPs", default_country="US")
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="alice.csv")
    RejectedRow.objects.create(import_job=job, row_number=2, column="email", reason="not an email address")
    sync = Sync.objects.create(owner=user, audience=audience, connection=connection)
    run = SyncRun.objects.create(sync=sync)
    batch = SyncBatch.objects.create(run=run, seq=1, kind="add", size=1)
    return {"connection": connection, "audience": audience, "import_job": job, "sync": sync, "run": run,
            "batch": batch}


def test_the_matrix_has_urls_to_check():
    # Guards against a silently empty matrix (e.g. a refactor of the URL walk).
    assert len(object_patterns()) >= 5, [p[2] for p in object_patterns()]


def test_every_url_argument_is_known():
    unknown = [
        f"{route} ({argument})"
        for _, name, route, converters in object_patterns()
        for argument in converters
        if argument not in PUBLIC_ARGUMENTS and kind_of(argument, name) is None
    ]
    assert not unknown, f"Teach the authorization matrix which object these URL arguments name: {unknown}"


def _url(namespace, name, converters, objects):
    kwargs = {}
    for argument in converters:
        if argument in PUBLIC_ARGUMENTS:
            kwargs[argument] = "meta"
        else:
            kwargs[argument] = objects[kind_of(argument, name)].pk
    return reverse(f"{namespace}:{name}" if namespace else name, kwargs=kwargs)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_user_gets_404_on_every_object_url(method, client_for, alices_objects, other_user):
    client = client_for(other_user)
    leaks = []
    for namespace, name, _route, converters in object_patterns():
        url = _url(namespace, name, converters, alices_objects)
        response = getattr(client, method)(url, HTTP_HX_REQUEST="true")
        # 405 is fine: that URL does not accept this method at all, for anybody.
        if response.status_code not in (404, 405):
            leaks.append(f"{method.upper()} {url} -> {response.status_code}")
    assert not leaks, leaks


@pytest.mark.django_db
def test_the_owner_reaches_every_object_page(client_for, user, alices_objects):
    """The same URLs work for their owner, so the 404s above are about ownership, not broken URLs."""
    client = client_for(user)
    broken = []
    for namespace, name, _route, converters in object_patterns():
        url = _url(namespace, name, converters, alices_objects)
        response = client.get(url, HTTP_HX_REQUEST="true")
        if response.status_code == 404 or response.status_code >= 500:
            broken.append(f"GET {url} -> {response.status_code}")
    assert not broken, broken
