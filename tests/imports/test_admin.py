from django.contrib.auth import get_user_model
from django.urls import reverse

from audiences import tasks as audience_tasks
from audiences.models import Audience, ImportJob, Member, RejectedRow


def test_admin_pages_render_read_only(client, user):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    audience = Audience.objects.create(owner=user, name="A", default_country="US", generation=1, member_count=1)
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv", status="succeeded")
    RejectedRow.objects.create(import_job=job, row_number=2, column="email", reason="not an email address")
    Member.objects.create(audience=audience, generation=1, person=b"x" + b"\0" * 11, e=b"\xab" * 32,
                          x="CR-SECRET-REF")
    client.force_login(admin)
    for model, obj in (("audience", audience), ("importjob", job)):
        for url in (reverse(f"admin:audiences_{model}_changelist"), reverse(f"admin:audiences_{model}_change",
                                                                            args=[obj.pk])):
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"CR-SECRET-REF" not in response.content  # unhashed identifiers stay out of the admin
    assert client.get(reverse("admin:audiences_importjob_add")).status_code == 403
    # Members are not in the admin at all: an operator sees counts, never identifiers.
    assert client.get("/admin/audiences/member/").status_code == 404


def test_admin_deletes_audiences_in_the_background_without_listing_their_members(
        client, user, monkeypatch, django_assert_max_num_queries, django_capture_on_commit_callbacks):

    queued = []
    monkeypatch.setattr(audience_tasks.purge_audience, "delay", queued.append)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    audience = Audience.objects.create(owner=user, name="Big", default_country="US", generation=1, member_count=500)
    Member.objects.bulk_create([Member(audience=audience, generation=1, person=b"x" + i.to_bytes(11, "big"))
                                for i in range(500)])
    client.force_login(admin)
    url = reverse("admin:audiences_audience_delete", args=[audience.pk])
    with django_assert_max_num_queries(20):  # the confirmation page does not walk the members
        page = client.get(url)
    assert page.status_code == 200 and b"removed in the background" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"post": "yes"}).status_code == 302
    assert queued == [audience.pk]
    audience.refresh_from_db()
    assert audience.status == Audience.Status.DELETING and Member.objects.filter(audience=audience).count() == 500

    other = Audience.objects.create(owner=user, name="Other", default_country="US")
    client.post(reverse("admin:audiences_audience_changelist"),
                {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"})
    assert Audience.objects.get(pk=other.pk).status == Audience.Status.DELETING
