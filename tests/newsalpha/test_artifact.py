"""The predictor folder format: validation at load time, one-line named errors, an export swap that never leaves
the folder without a predictor."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from data_pipelines.errors import CheckpointError
from newsalpha import NewsReturnPredictor, artifact
from tests.newsalpha.tiny_backbones_h8 import make_tiny_bert

torch.set_num_threads(1)
META = {"pooling": "mean", "target_mean": 0.001, "target_std": 0.02, "max_length": 16, "label": "exret_h1"}


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from newsalpha.train.model import NewsRegressor

    bert = make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")
    module = NewsRegressor(backbone=str(bert), finetune="full").eval()
    return module.merged_backbone(), module.tokenizer, module.head


@pytest.fixture(scope="module")
def folder(parts, tmp_path_factory):
    return artifact.write_predictor(*parts, META, tmp_path_factory.mktemp("art") / "predictor")


def _edited(folder, tmp_path, **changes):
    copy = shutil.copytree(folder, tmp_path / "p")
    meta = json.loads((copy / artifact.METADATA_FILE).read_text())
    meta.update(changes)
    (copy / artifact.METADATA_FILE).write_text(json.dumps(meta))
    return copy


def test_written_metadata_is_complete(folder):
    meta = artifact.read_metadata(folder)
    assert meta["format_version"] == artifact.FORMAT_VERSION == 2
    assert meta["label"] == {"kind": "exret", "horizon": 1, "column": "exret_h1"}
    assert set(meta["files"]) >= set(artifact.REQUIRED_FILES)
    assert meta["head"] == {"layers": ["dropout", "linear"]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_length": "abc"}, "max_length must be a whole number >= 2, got 'abc'"),
        ({"max_length": 1}, "max_length must be a whole number >= 2, got 1"),
        ({"max_length": 2.5}, "max_length"),
        ({"max_length": True}, "max_length"),
        ({"target_std": None}, "target_std must be a finite number > 0, got None"),
        ({"target_std": 0}, "target_std"),
        ({"target_std": float("nan")}, "target_std"),
        ({"target_mean": "zero"}, "target_mean must be a finite number"),
        ({"text_template": "{text.__class__.__mro__}"}, "may only use {text} and {ticker}"),
        ({"text_template": "{text.nope}"}, "got {text.nope}"),
        ({"text_template": "{published_at}: {text}"}, "never a date"),
        ({"text_template": "{text:>999999999}"}, "may not use conversions or format specs"),
        ({"text_template": "{ticker}"}, "must contain {text}"),
        ({"pooling": "max"}, "pooling must be one of mean, first, last"),
        ({"label": "exret_hX"}, "is not a label"),
        ({"label": None}, "label is missing"),
        ({"head": {"layers": ["lstm"]}}, "unknown head layer 'lstm'"),
        ({"files": {"../../etc/passwd": "0" * 64}}, "outside the predictor folder"),
        ({"files": {"/etc/passwd": "0" * 64}}, "outside the predictor folder"),
        ({"files": {"sub/x": "0" * 64}}, "outside the predictor folder"),
        ({"files": {"..": "0" * 64}}, "outside the predictor folder"),
        ({"files": {"config.json": "not a digest"}}, "not a SHA-256"),
        ({"files": ["config.json"]}, "files must map"),
    ],
)
def test_bad_metadata_refused_at_load_in_one_line(folder, tmp_path, changes, message):
    bad = _edited(folder, tmp_path, **changes)
    with pytest.raises(CheckpointError) as info:
        NewsReturnPredictor.from_pretrained(bad, device="cpu", verify=False)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and str(bad / artifact.METADATA_FILE) in text


def test_template_error_is_the_data_side_error(folder, tmp_path):
    """The predictor refuses a template with the very check the DataModule applies."""
    from data_pipelines.errors import ConfigError
    from newsalpha.text import validate_template

    template = "{text.__class__.__mro__}"
    with pytest.raises(ConfigError) as data_side:
        validate_template(template, "text_template")
    with pytest.raises(CheckpointError) as predictor_side:
        artifact.read_metadata(_edited(folder, tmp_path, text_template=template))
    assert str(data_side.value) in str(predictor_side.value)


def test_every_problem_in_one_error(folder, tmp_path):
    bad = _edited(folder, tmp_path, max_length=0, target_std=None, text_template="{text.x}")
    with pytest.raises(CheckpointError) as info:
        artifact.read_metadata(bad)
    assert all(word in str(info.value) for word in ("max_length", "target_std", "text_template"))


def test_version_1_folder_is_read_with_its_label_upgraded(folder, tmp_path):
    old = _edited(folder, tmp_path, format_version=1, label="abret_h5")
    meta = artifact.read_metadata(old)
    assert meta["label"] == {"kind": "abret", "horizon": 5, "column": "abret_h5"}
    assert NewsReturnPredictor.from_pretrained(old, device="cpu", verify=False).label.horizon == 5


def test_replacing_a_predictor_is_one_atomic_exchange(parts, folder, tmp_path, monkeypatch):
    target = shutil.copytree(folder, tmp_path / "predictor")
    seen = []
    real_exchange = artifact._exchange

    def spy(a, b):
        ok = real_exchange(a, b)
        seen.append(artifact.read_metadata(b)["target_std"])  # right after the exchange: the new predictor
        return ok

    monkeypatch.setattr(artifact, "_exchange", spy)
    artifact.write_predictor(*parts, {**META, "target_std": 0.5}, target)
    assert seen == [0.5] and artifact.read_metadata(target)["target_std"] == 0.5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_crash_between_two_renames_is_undone(parts, folder, tmp_path, monkeypatch):
    """Where the OS cannot exchange two folders, a failed second rename puts the old predictor back ..."""
    target = shutil.copytree(folder, tmp_path / "predictor")
    monkeypatch.setattr(artifact, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(artifact.os, "rename", flaky)
    with pytest.raises(OSError):
        artifact.write_predictor(*parts, {**META, "target_std": 0.5}, target)
    assert artifact.read_metadata(target)["target_std"] == 0.02


def test_leftovers_of_a_killed_export_are_recovered(parts, folder, tmp_path):
    """... and a process killed between them leaves the old one aside, which the next export restores."""
    dead = 2**22 + 12345  # above the default pid_max: no such process
    aside = shutil.copytree(folder, tmp_path / f".predictor.{dead}.old")
    stale_tmp = tmp_path / f".predictor.{dead}.abcd.tmp"
    stale_tmp.mkdir()
    target = tmp_path / "predictor"
    assert not target.exists()
    artifact._recover(target)
    assert artifact.read_metadata(target)["target_std"] == 0.02
    assert not aside.exists() and not stale_tmp.exists()
    artifact.write_predictor(*parts, {**META, "target_std": 0.5}, target)
    assert artifact.read_metadata(target)["target_std"] == 0.5
