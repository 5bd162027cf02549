from django.contrib.auth import get_user_model
from django.urls import reverse

from audiences.models import Audience, ImportJob, Member, RejectedRow


def test_admin_pages_render_read_only(client, user):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    audience = Audience.objects.create(owner=user, name="A", default_country="US", generation=1, member_count=1)
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv", status="succeeded")
    RejectedRow.objects.create(import_job=job, row_number=2, column="email", reason="not an email address")
    member = Member.objects.create(audience=audience, generation=1, fingerprint="f" * 64,
                                   keys={"e": "ab" * 32, "x": "CR-SECRET-REF"})
    client.force_login(admin)
    for model, obj in (("audience", audience), ("importjob", job), ("member", member)):
        for url in (reverse(f"admin:audiences_{model}_changelist"), reverse(f"admin:audiences_{model}_change",
                                                                            args=[obj.pk])):
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"CR-SECRET-REF" not in response.content  # unhashed identifiers stay out of the admin
    assert client.get(reverse("admin:audiences_importjob_add")).status_code == 403
