"""Damaged dataset files, as a user with a broken download has them: each reader answers with one
line naming the file and what is wrong, the prepare stage exits 2 and writes nothing, and a
CIFAR-10 batch cannot run code."""

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lowspike.config import _ParamsLoader
from lowspike.data import load_raw
from lowspike.errors import DataFileError
from lowspike.params import validate_params

from .conftest import write_cifar_batch, write_cifar_meta, write_idx
from .test_gsc import write_gsc

REPO = Path(__file__).resolve().parents[2]
MNIST_FILES = {"train-images-idx3-ubyte": (20, 28, 28), "train-labels-idx1-ubyte": (20,),
               "t10k-images-idx3-ubyte": (10, 28, 28), "t10k-labels-idx1-ubyte": (10,)}


def _mnist(root: Path, compress: bool = False) -> Path:
    raw = root / "MNIST" / "raw"
    for name, shape in MNIST_FILES.items():
        values = np.arange(np.prod(shape)).reshape(shape) % (10 if len(shape) == 1 else 256)
        write_idx(raw / name, values.astype(np.uint8), compress)
    return raw


def _load(dataset: str, root: Path, **section):
    params = validate_params({"data": {"root": str(root), **section}})
    return load_raw(dataset, params.data)


def test_a_truncated_idx_file_says_which_and_by_how_much(tmp_path):
    raw = _mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DataFileError) as info:
        _load("mnist", tmp_path, mnist={"val_size": 10})
    assert str(info.value) == (f"{path} is truncated: its header says 20 x 28 x 28 values, 15,696 bytes in all; "
                               f"it has 14,696 (1,000 bytes short)")


def test_an_idx_file_with_another_magic_number_is_refused(tmp_path):
    raw = _mnist(tmp_path)
    path = raw / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + path.read_bytes()[4:])
    with pytest.raises(DataFileError, match=rf"^{path} is not an IDX file of unsigned bytes \(magic number 00000d01"):
        _load("mnist", tmp_path, mnist={"val_size": 10})


def test_a_gzipped_idx_file_with_a_bad_checksum_is_refused(tmp_path):
    raw = _mnist(tmp_path, compress=True)
    path = raw / "train-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=rf"^{path}: damaged gzip file \(CRC check failed"):
        _load("mnist", tmp_path, mnist={"val_size": 10})


def test_labels_that_do_not_match_the_images_are_refused(tmp_path):
    raw = _mnist(tmp_path)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte: \(9,\) labels for the 10 images"):
        _load("mnist", tmp_path, mnist={"val_size": 10})


def _cifar(root: Path, rows: np.ndarray | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (4, 3072), dtype=np.uint8), [0, 1, 2, 3])
    write_cifar_meta(folder / "batches.meta")
    return folder


@pytest.mark.parametrize("row_bytes", [3000, 1536])
def test_cifar_rows_that_are_not_3072_bytes_are_refused_even_when_the_total_divides(tmp_path, row_bytes):
    # 4 rows of 1,536 bytes are 6,144 = 2 x 3,072 bytes in all: read as 2 images before
    folder = _cifar(tmp_path)
    write_cifar_batch(folder / "data_batch_3", np.zeros((4, row_bytes), dtype=np.uint8), [0, 1, 2, 3])
    with pytest.raises(DataFileError) as info:
        _load("cifar10", tmp_path, cifar10={"val_size": 4})
    assert str(info.value) == (f"{folder / 'data_batch_3'}: data of shape (4, {row_bytes}) and type uint8, a CIFAR-10 "
                               f"batch holds uint8 rows of 3,072 bytes (3 x 32 x 32)")


class _RunsCode:
    """A pickle payload that calls os.system when it is loaded by a plain pickle.load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_cifar_batch_that_tries_to_run_code_is_refused_before_running_it(tmp_path):
    folder = _cifar(tmp_path)
    marker = tmp_path / "ran"
    with open(folder / "data_batch_2", "wb") as handle:
        pickle.dump({b"data": _RunsCode(marker), b"labels": [0]}, handle)
    with pytest.raises(DataFileError, match=r"data_batch_2: not a CIFAR-10 batch \(refused posix.system: a CIFAR-10 "
                                            r"batch holds only dicts, lists, strings, bytes and numpy arrays\)"):
        _load("cifar10", tmp_path, cifar10={"val_size": 4})
    assert not marker.exists()


def test_a_truncated_cifar_batch_is_named(tmp_path):
    folder = _cifar(tmp_path)
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataFileError, match=rf"^{path}: truncated or damaged pickle"):
        _load("cifar10", tmp_path, cifar10={"val_size": 4})


def test_a_wav_that_is_not_audio_is_named(tmp_path):
    folder, _ = write_gsc(tmp_path)
    path = folder / "no" / "spk1_nohash_0.wav"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataFileError, match=rf"^{path}: not a readable audio file \("):
        _load("gsc", tmp_path, gsc={"words": ["yes", "no"]})


def test_the_prepare_stage_answers_a_damaged_file_in_one_line_and_writes_nothing(tmp_path):
    folder = _cifar(tmp_path / "raw")
    marker = tmp_path / "ran"
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": _RunsCode(marker)}, handle)
    raw = yaml.load((REPO / "params.yaml").read_text(), Loader=_ParamsLoader)
    raw["data"].update(root=str(tmp_path / "raw"), datasets=["cifar10"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--dataset", "cifar10"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: {folder / 'data_batch_1'}: not a CIFAR-10 batch (refused posix.system: "
                                        "a CIFAR-10 batch holds only dicts, lists, strings, bytes and numpy arrays)"]
    assert not marker.exists() and not (tmp_path / "data").exists()
