from audiences import imports
from audiences.models import Member


def test_sample_file_imports_with_cust_ref_mapped_by_hand(run_file, audience):
    content = imports.sample_file_path().read_bytes()
    headers = content.split(b"\n", 1)[0].decode().split(",")
    mapping = imports.guess_mapping(headers)
    mapping[str(headers.index("Cust Ref"))] = "external_id"
    job = run_file(content, mapping=mapping)
    assert job.status == "succeeded", job.error_message
    audience.refresh_from_db()
    assert job.rows_total == 3000
    assert audience.member_count == job.rows_imported > 2500
    assert job.rows_rejected > 0
    assert audience.key_coverage["external_id"] > 2500
    assert Member.objects.filter(audience=audience, generation=audience.generation).count() == audience.member_count
    assert not job.stored_path
