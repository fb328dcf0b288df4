"""The app's data boundaries: allowed roots, escapes by `..` and links, and folders too large to
walk (`brat.data.access`), and the dataset loader keeping metadata.csv inside its folder."""

from __future__ import annotations

import os

import pytest

from brat.data.access import AccessError, allowed_folder, survey
from brat.data.dataset import load_dataset
from brat.errors import DatasetError
from brat.settings import SAMPLES, data_roots


@pytest.fixture
def roots(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "study" / "glioma_tumor").mkdir(parents=True)
    (allowed / "study" / "glioma_tumor" / "a.png").write_bytes(b"png")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "patient.png").write_bytes(b"png")
    return allowed, secret


def test_a_folder_inside_a_root_is_allowed_and_one_outside_is_not(roots) -> None:
    allowed, secret = roots
    assert allowed_folder(allowed / "study", [allowed]) == (allowed / "study").resolve()
    assert allowed_folder(allowed, [allowed]) == allowed.resolve()
    for outside in (secret, allowed / ".." / "secret", allowed.parent, "/usr/share", "~"):
        with pytest.raises(AccessError, match="data_roots"):
            allowed_folder(outside, [allowed])


def test_a_link_out_of_a_root_is_refused_and_a_root_that_is_a_link_works(roots, tmp_path) -> None:
    allowed, secret = roots
    (allowed / "escape").symlink_to(secret, target_is_directory=True)
    with pytest.raises(AccessError):
        allowed_folder(allowed / "escape", [allowed])
    linked_root = tmp_path / "linked-root"
    linked_root.symlink_to(allowed, target_is_directory=True)
    assert allowed_folder(linked_root / "study", [linked_root]) == (allowed / "study").resolve()
    assert allowed_folder(allowed / "study", [linked_root]) == (allowed / "study").resolve()


def test_the_walk_refuses_links_that_lead_outside_the_roots(roots) -> None:
    allowed, secret = roots
    study = allowed / "study"
    assert survey(study, [allowed]).files == 1
    (study / "glioma_tumor" / "b.png").symlink_to(secret / "patient.png")
    with pytest.raises(AccessError, match="links to a place outside"):
        survey(study, [allowed])
    (study / "glioma_tumor" / "b.png").unlink()
    (study / "no_tumor").symlink_to(secret, target_is_directory=True)
    with pytest.raises(AccessError):
        survey(study, [allowed])
    (study / "no_tumor").unlink()
    (study / "copy.png").symlink_to(study / "glioma_tumor" / "a.png")  # inside: fine
    assert survey(study, [allowed]).files == 2


def test_a_huge_folder_is_stopped_at_the_file_limit(tmp_path) -> None:
    folder = tmp_path / "huge"
    for block in range(5):
        (folder / f"part{block}").mkdir(parents=True)
        for i in range(500):
            (folder / f"part{block}" / f"{i}.png").touch()
    seen = []
    with pytest.raises(DatasetError, match="more than 2,000 files"):
        survey(folder, [tmp_path], max_files=2_000, progress=seen.append)
    assert seen == [2_000]
    assert survey(folder, [tmp_path], max_files=3_000).files == 2_500


def test_a_deep_folder_is_stopped_and_a_progress_call_can_cancel_the_walk(tmp_path) -> None:
    deep = tmp_path.joinpath(*(f"level{i}" for i in range(6)))
    deep.mkdir(parents=True)
    with pytest.raises(DatasetError, match="nested more than 3 folders"):
        survey(tmp_path, [tmp_path], max_depth=3)
    for i in range(2_000):
        (tmp_path / f"{i}.png").touch()

    def cancel(files: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        survey(tmp_path, [tmp_path], progress=cancel)


def test_the_data_roots_come_from_the_environment_or_default_to_data_and_samples(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BRAT_DATA_ROOTS", raising=False)
    monkeypatch.delenv("BRAT_DATA", raising=False)
    assert data_roots() == [SAMPLES]
    monkeypatch.setenv("BRAT_DATA", "/data/mri")
    assert [str(root) for root in data_roots()] == ["/data/mri", str(SAMPLES)]
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[brat]\ndata_roots = ["/a", "/b"]\n')
    assert [str(root) for root in data_roots()] == ["/a", "/b"]
    monkeypatch.setenv("BRAT_DATA_ROOTS", os.pathsep.join(["/x", "/y"]))
    assert [str(root) for root in data_roots()] == ["/x", "/y"]


def test_metadata_rows_that_lead_out_of_the_folder_are_not_read(roots) -> None:
    allowed, secret = roots
    study = allowed / "study"
    (study / "metadata.csv").write_text(
        "path,label\n"
        f"{secret / 'patient.png'},no_tumor\n"
        "../../secret/patient.png,no_tumor\n"
        "glioma_tumor/a.png,glioma_tumor\n"
    )
    dataset = load_dataset(study)
    assert [r.path for r in dataset.records] == ["glioma_tumor/a.png"]
    assert any("2 files that are not in the folder" in w for w in dataset.warnings)


def test_a_link_loop_and_hidden_links_are_refused_not_a_traceback(roots) -> None:
    allowed, secret = roots
    loop = allowed / "loop"
    loop.symlink_to(loop)
    with pytest.raises(AccessError, match="cannot be resolved"):
        allowed_folder(loop, [allowed])
    study = allowed / "study"
    (study / ".hidden").symlink_to(secret, target_is_directory=True)
    with pytest.raises(AccessError):
        survey(study, [allowed])
    (study / "metadata.csv").write_text("path,label\n.hidden/patient.png,no_tumor\n")
    assert [r.path for r in load_dataset(study).records] == ["glioma_tumor/a.png"]
