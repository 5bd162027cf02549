"""Column mapping: validation of the marketer's choices (service and form)."""

import pytest

from audiences import imports
from audiences.forms import MappingForm
from audiences.models import ImportJob


@pytest.fixture
def job(user, audience):
    return ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv",
                                    headers=["E-mail", "Cust Ref", ""], column_mapping={"0": "email", "1": "", "2": ""})


def test_clean_mapping_keeps_every_column(job):
    assert imports.clean_mapping(job, {"0": "email", "1": "external_id"}) == {"0": "email", "1": "external_id", "2": ""}


def test_clean_mapping_refuses_a_key_mapped_twice(job):
    with pytest.raises(ValueError, match="mapped twice"):
        imports.clean_mapping(job, {"0": "email", "1": "email"})


def test_clean_mapping_refuses_unknown_keys(job):
    with pytest.raises(ValueError, match="unknown match key"):
        imports.clean_mapping(job, {"0": "ssn"})


def test_clean_mapping_needs_one_mapped_column(job):
    with pytest.raises(imports.UnusableFile, match="No column is mapped"):
        imports.clean_mapping(job, {"0": "", "1": ""})


def test_mapping_form_labels_each_column_and_starts_from_the_guess(job):
    form = MappingForm(job=job)
    assert [f.label for f in form] == ["Column E-mail", "Column Cust Ref", "Column 3 (no header)"]
    assert form["col_0"].initial == "email"
    assert 'data-column="Cust Ref"' in str(form["col_1"])


def test_mapping_form_errors_inline(job):
    form = MappingForm({"col_0": "email", "col_1": "email", "col_2": ""}, job=job)
    assert not form.is_valid() and "already mapped" in str(form.errors["col_1"])
    form = MappingForm({"col_0": "", "col_1": "", "col_2": ""}, job=job)
    assert not form.is_valid() and "at least one column" in str(form.non_field_errors())
    form = MappingForm({"col_0": "bogus"}, job=job)
    assert not form.is_valid() and "col_0" in form.errors
    form = MappingForm({"col_0": "phone", "col_1": "external_id"}, job=job)
    assert form.is_valid() and form.mapping() == {"0": "phone", "1": "external_id", "2": ""}
