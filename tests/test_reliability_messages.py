"""Messages instead of tracebacks: unreadable files, missing paths, hostile pickles, CLI flags."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest
import torch
from hub_fixtures import REVIEWS, build_text_model

from hf_logme.cli import main
from hf_logme.cli.common import to_flags
from hf_logme.data import load_array, load_dataset_source
from hf_logme.errors import (
    HubUnreachableError,
    InputNotFoundError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from hf_logme.features.loading import inspect_checkpoint
from hf_logme.metric_space import export_space, space_files

# --- datasets from files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", b"", r"empty.csv is empty \(0 bytes\)"),
        ("header.csv", b"text,label\n", "header.csv has no rows"),
        (
            "latin1.csv",
            "text,label\ncafé,1\nbéton,0\n".encode("latin1"),
            r"latin1.csv: it is not UTF-8 text \(byte b'\\xe9' at position \d+\)\. "
            r"Save it as UTF-8",
        ),
        ("broken.csv", b'text,label\n"never closed,1\n', "Cannot read .*broken.csv: ParserError"),
        ("broken.json", b'{"text": "a", "label"\n', "Cannot read .*broken.json: "),
        ("empty.jsonl", b"", "is empty"),
    ],
)
def test_unreadable_data_files_are_value_errors_with_the_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_dataset_source(str(path), split="train")


@pytest.mark.parametrize("source", ["./nope", "data/reviews.csv", "reviews.csv", "/no/such/dir/"])
def test_a_missing_local_dataset_path_is_not_a_hub_lookup(source):
    with pytest.raises(InputNotFoundError, match="no such file or folder") as caught:
        load_dataset_source(source)
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ValueError)


# --- arrays for `hf-logme score` -------------------------------------------------------------


class _Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on the raw pickle
def test_a_malicious_pt_file_is_refused_unread(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "features.pt"
    torch.save({"features": torch.zeros(3, 2), "x": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match="not a plain tensor file.*not unpickled"):
        load_array(str(evil), what="features")
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="raw.pt is not a plain tensor file"):
        load_array(str(raw), what="features")
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, write, message",
    [
        (
            "two.pt",
            lambda p: torch.save({"a": torch.ones(2), "b": torch.ones(2)}, p),
            r"holds \['a', 'b'\]; save exactly one tensor",
        ),
        ("list.pt", lambda p: torch.save([1, 2], p), "holds a list, not a tensor"),
        ("garbage.pt", lambda p: p.write_bytes(b"garbage"), "not written by torch.save"),
        (
            "objects.npy",
            lambda p: np.save(p, np.array([{"a": 1}], dtype=object)),
            "holds pickled Python objects, which are not loaded",
        ),
        ("broken.npz", lambda p: p.write_bytes(b"not an archive"), "is not a numpy array file"),
        ("truncated.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00"), "Cannot read labels from"),
        ("broken.safetensors", lambda p: p.write_bytes(b"\x00" * 16), "Cannot read labels from"),
        ("empty.txt", lambda p: p.write_text("\n\n"), "holds no values"),
        ("latin1.txt", lambda p: p.write_bytes("café\n".encode("latin1")), "is not UTF-8 text"),
        ("labels.xlsx", lambda p: p.write_bytes(b"x"), "use .npy, .npz"),
    ],
)
def test_bad_array_files_are_value_errors(tmp_path, name, write, message):
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=message):
        load_array(str(path), what="labels")


def test_good_array_files_round_trip(tmp_path):
    values = np.arange(6.0).reshape(3, 2)
    torch.save({"only": torch.from_numpy(values)}, tmp_path / "one.pt")
    np.save(tmp_path / "a.npy", values)
    (tmp_path / "y.txt").write_text("cat\ndog\n\ncat\n")
    assert np.array_equal(load_array(str(tmp_path / "one.pt"), what="f").numpy(), values)
    assert np.array_equal(load_array(str(tmp_path / "a.npy"), what="f"), values)
    assert load_array(str(tmp_path / "y.txt"), what="y").tolist() == ["cat", "dog", "cat"]
    with pytest.raises(InputNotFoundError, match="labels file .* does not exist"):
        load_array(str(tmp_path / "none.npy"), what="labels")


# --- model paths -----------------------------------------------------------------------------


def test_model_paths_that_do_not_exist_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"x")
    for name in ("./missing", "models/a/b", "missing/", str(tmp_path / "none")):
        with pytest.raises(ModelNotFoundError, match=f"{name}: no such model folder"):
            inspect_checkpoint(name)
    with pytest.raises(ModelNotFoundError, match="is a file, not a folder"):
        inspect_checkpoint("./weights.bin")
    with pytest.raises(ModelNotFoundError, match="not a valid Hub id"):
        inspect_checkpoint("bad name!")
    # Offline (the tests' default), a name that could be a Hub id says both places were tried.
    with pytest.raises(
        HubUnreachableError, match="models/tiny: not a local folder .* the Hub could"
    ):
        inspect_checkpoint("models/tiny")


def test_a_name_on_neither_the_disk_nor_the_hub(hub):
    with pytest.raises(ModelNotFoundError, match="nobody/missing: not found, neither as a local"):
        inspect_checkpoint("nobody/missing")


def test_a_folder_without_config_json_is_not_an_upgrade_problem(tmp_path):
    folder = build_text_model(tmp_path / "m", seed=0)
    (folder / "config.json").unlink()
    with pytest.raises(UnsupportedModelError, match="has no config.json") as caught:
        inspect_checkpoint(str(folder))
    assert "upgrade" not in str(caught.value)


# --- the CLI speaks in flags -----------------------------------------------------------------


@pytest.fixture
def reviews_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("review", "score"), *((t, y) for t, y in REVIEWS)])
    return path


def test_cli_errors_name_flags_not_python_arguments(reviews_csv, tmp_path, capsys):
    code = main(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            str(tmp_path),
            "--label-column",
            "stars",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--label-column stars is not a column" in err and "label_column" not in err


@pytest.mark.parametrize(
    "content, message", [(b"", "is empty"), ("a,b\ncafé,1\n".encode("latin1"), "not UTF-8")]
)
def test_cli_unreadable_dataset_exits_2_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    assert main(["rank", "--dataset", str(path), "--models", "org/m", "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_a_dataset_with_one_class_exits_2_before_any_model(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("text,label\na,0\nb,0\nc,0\n")
    assert main(["rank", "--dataset", str(path), "--models", str(tmp_path / "nope"), "-q"]) == 2
    assert "single class" in capsys.readouterr().err


@pytest.mark.parametrize(
    "message, command, expected",
    [
        (
            "pass use_safetensors=False to allow it",
            "rank",
            "pass --allow-pickle-weights to allow it",
        ),
        ("requires trust_remote_code=True; pass", "rank", "requires --trust-remote-code; pass"),
        ("Pass label_column=.", "rank", "Pass --label-column."),
        ("pass text_column='body' or another", "rank", "pass --text-column body or another"),
        (
            "max_samples must be a positive int; got 0.",
            "rank",
            "--max-samples must be a positive int; got 0.",
        ),
        ("pooling must be one of ['auto']", "rank", "--pooling must be one of ['auto']"),
        ("use task='regression'", "rank", "use --task-type regression"),
        ("pass regression=True", "score", "pass --regression"),
        ("the text pooling of this model", "rank", "the text pooling of this model"),
        ("metadata_column=x stays", "rank", "metadata_column=x stays"),
    ],
)
def test_to_flags(message, command, expected):
    assert to_flags(message, command) == expected


# --- metric export keeps the user's files ----------------------------------------------------


def test_metric_export_refuses_a_non_empty_folder(tmp_path, capsys):
    folder = tmp_path / "logme"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    assert main(["metric", "export", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is not empty (1 entries, would replace README.md)" in err and "--overwrite" in err
    assert (folder / "README.md").read_text() == "my notes"
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        export_space(folder)
    assert main(["metric", "export", str(folder), "--overwrite"]) == 0
    assert (folder / "README.md").read_text() == space_files()["README.md"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_space(empty, name="empty") == empty  # an empty folder is fine
    with pytest.raises(FileExistsError, match="is a file"):
        export_space(folder / "README.md")
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        export_space(tmp_path / "new", overwrite="yes")
