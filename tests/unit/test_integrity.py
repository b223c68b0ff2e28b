"""The fingerprint of a model's files: any change, move or addition of a file changes it."""

from __future__ import annotations

import pytest

from pipelines.adapters.integrity import IntegrityError, folder_digest, verify


@pytest.fixture
def model(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.pkl").write_bytes(b"pickle bytes")
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "requirements.txt").write_text("numpy==2.4.6\n")
    return folder


def test_the_same_files_give_the_same_digest(model, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in model.rglob("*"):
        target = copy / path.relative_to(model)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    assert folder_digest(model) == folder_digest(copy)
    verify(copy, folder_digest(model), "model m v1")


@pytest.mark.parametrize("change", ["edit", "add", "remove", "rename"])
def test_any_change_is_refused(model, change):
    recorded = folder_digest(model)
    if change == "edit":
        (model / "model.pkl").write_bytes(b"pickle bytez")
    elif change == "add":
        (model / "extra.py").write_text("import os\n")
    elif change == "remove":
        (model / "sub" / "requirements.txt").unlink()
    else:
        (model / "MLmodel").rename(model / "MLmodel2")
    with pytest.raises(IntegrityError, match="model m v1: its files changed after registration"):
        verify(model, recorded, "model m v1")


def test_what_mlflow_adds_to_a_download_is_not_part_of_the_model(model):
    recorded = folder_digest(model)
    (model / "registered_model_meta").write_text("model_name: m\nmodel_version: 1\n")
    verify(model, recorded, "model m v1")


def test_a_version_without_a_fingerprint_loads_unchecked(model):
    verify(model, None, "model m v1")
