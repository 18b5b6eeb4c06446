"""tg.save / tg.load: safetensors round trips, atomic writes, and the errors for bad files and
bad values."""
import os

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
from tinygrad_pt import serialization

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]


@given(arrays=st.dictionaries(
    st.text("abcdefgh._", min_size=1, max_size=8),
    hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                         max_side=4)),
    max_size=4))
def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("rt") / "x.safetensors"
    tg.save({k: tg.tensor(v) for k, v in arrays.items()}, path)
    back = tg.load(path)
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        t = back[k]
        assert isinstance(t, tg.Tensor) and not t.requires_grad
        assert t.dtype == v.dtype and t.shape == v.shape, k
        np.testing.assert_array_equal(t.numpy(), v)


def test_raw_arrays_and_strided_views_are_saved_as_their_values(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    tg.save({"t": x.T, "s": x[:, ::2], "z": np.asarray(3.5), "big": x.astype(">f8")},
            tmp_path / "v.safetensors")
    back = tg.load(tmp_path / "v.safetensors")
    np.testing.assert_array_equal(back["t"].numpy(), x.T)
    np.testing.assert_array_equal(back["s"].numpy(), x[:, ::2])
    assert back["z"].shape == () and back["z"].item() == 3.5
    np.testing.assert_array_equal(back["big"].numpy(), x)


def test_the_file_is_plain_safetensors_with_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    tg.save({"w": tg.ones(2, 3)}, path, metadata={"format": "1", "model": "mlp"})
    # readable by the safetensors library itself, no tinygrad_pt needed
    raw = safetensors.numpy.load_file(str(path))
    np.testing.assert_array_equal(raw["w"], np.ones((2, 3), np.float32))
    assert serialization.load_metadata(path) == {"format": "1", "model": "mlp"}


def test_loaded_tensors_are_writable_and_model_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    tg.save(model.state_dict(), tmp_path / "model.safetensors")
    tg.manual_seed(123)
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert not np.array_equal(other[0].weight.numpy(), model[0].weight.numpy())
    state = tg.load(tmp_path / "model.safetensors")
    other.load_state_dict(state)
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    state["0.weight"].data += 1.0  # no read-only buffer behind a loaded tensor


def test_save_overwrites_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    tg.save({"a": tg.zeros(3)}, path)
    tg.save({"a": tg.ones(3), "b": tg.ones(1)}, path)
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    back = tg.load(path)
    np.testing.assert_array_equal(back["a"].numpy(), np.ones(3, np.float32))
    assert set(back) == {"a", "b"}


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_an_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.safetensors"
    tg.save({"a": tg.zeros(3)}, path)
    old_bytes = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated crash in the middle of the write")

    monkeypatch.setattr(serialization.os, where, crash)
    with pytest.raises(OSError, match="simulated crash"):
        tg.save({"a": tg.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # the temporary file was removed
    np.testing.assert_array_equal(tg.load(path)["a"].numpy(), np.zeros(3, np.float32))


def test_save_accepts_only_tensors_and_arrays(tmp_path):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(TypeError, match="the value of 'lr' is a float; only Tensors and arrays"):
        tg.save({"w": tg.ones(2), "lr": 0.1}, path)
    with pytest.raises(TypeError, match="the value of 'nested' is a dict"):
        tg.save({"nested": {"a": tg.ones(2)}}, path)
    with pytest.raises(TypeError, match="keys must be strings, got 3"):
        tg.save({3: tg.ones(2)}, path)
    with pytest.raises(TypeError, match="'s' has dtype <U3"):
        tg.save({"s": np.array(["abc"])}, path)
    with pytest.raises(TypeError, match="expected a dict of name -> Tensor, got list"):
        tg.save([tg.ones(2)], path)
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        tg.save({"w": tg.ones(2)}, path, metadata={"epoch": 3})
    assert not path.exists()


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        tg.load(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_load_invalid_file_says_so(tmp_path, damage):
    good = tmp_path / "good.safetensors"
    tg.save({"w": tg.randn(10, 10), "b": tg.zeros(10)}, good)
    data = good.read_bytes()
    bad = tmp_path / f"{damage}.safetensors"
    bad.write_bytes({"truncated": data[: len(data) - 17],
                     "garbage": b"this is not a safetensors file" * 20,
                     "empty": b""}[damage])
    with pytest.raises(ValueError, match=f"{damage}.safetensors' is not a valid safetensors file"):
        tg.load(bad)


def test_save_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory to write into does not exist.*nodir"):
        tg.save({"w": tg.ones(1)}, tmp_path / "nodir" / "w.safetensors")


def test_load_a_directory_is_an_error(tmp_path):
    with pytest.raises(IsADirectoryError, match="expected a safetensors file"):
        tg.load(tmp_path)


def test_load_device_argument(tmp_path):
    tg.save({"w": tg.ones(2)}, tmp_path / "w.safetensors")
    assert tg.load(tmp_path / "w.safetensors", device="cpu")["w"].device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tg.load(tmp_path / "w.safetensors", device="tpu")


@pytest.mark.gpu
def test_cuda_tensors_are_saved_and_loaded_to_a_device(tmp_path):
    x = tg.randn(3, 4).to("cuda")
    tg.save({"x": x}, tmp_path / "x.safetensors")
    back = tg.load(tmp_path / "x.safetensors", device="cuda")
    assert back["x"].device == "cuda"
    np.testing.assert_array_equal(back["x"].numpy(), x.numpy())


# ----------------------------------------------------------------------------------------------------
# Files from elsewhere, and files that are not files

def test_bfloat16_tensors_load_as_float32_exactly(tmp_path):
    from hostile_files import bfloat16_bytes, safetensors_bytes
    values = np.array([[1.0, -2.5], [3.140625, 0.0]], np.float32)  # exact in bfloat16
    path = tmp_path / "hub.safetensors"
    path.write_bytes(safetensors_bytes({
        "w": ("BF16", (2, 2), bfloat16_bytes(values)),
        "b": ("F32", (2,), np.array([0.5, 1.5], "<f4").tobytes())}))
    with pytest.warns(UserWarning, match=r"1 bfloat16 tensor\(s\) in .*hub.safetensors.* were "
                                         r"loaded as float32"):
        out = tg.load(path)
    assert out["w"].dtype == np.float32
    np.testing.assert_array_equal(out["w"].numpy(), values)
    np.testing.assert_array_equal(out["b"].numpy(), [0.5, 1.5])


def test_fp8_tensors_are_refused_by_name(tmp_path):
    from hostile_files import safetensors_bytes
    path = tmp_path / "fp8.safetensors"
    path.write_bytes(safetensors_bytes({"w": ("F8_E4M3", (4,), bytes(4))}))
    with pytest.raises(ValueError, match=r"load: .*fp8.safetensors.* holds fp8 tensors \(w\); fp8 "
                                         r"is not supported"):
        tg.load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "checkpoint.safetensors"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(ValueError, match=r"is a named pipe, not a regular file"):
        tg.load(fifo)
    with pytest.raises(ValueError, match=r"is a named pipe"):
        tg.load_metadata(fifo) if hasattr(tg, "load_metadata") else serialization.load_metadata(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "checkpoint.safetensors"
    link.symlink_to("/dev/null")
    with pytest.raises(ValueError, match=r"is a device, not a regular file"):
        tg.load(link)


def test_a_dead_writers_temporary_is_removed_by_the_next_save(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # that process has exited: its pid names no live writer
    stale = tmp_path / f".ckpt.safetensors.{dead}.deadbeef.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / ".ckpt.safetensors.1.cafef00d.tmp"  # pid 1 is alive: not ours to remove
    live.write_bytes(b"y")
    other = tmp_path / f".other.safetensors.{dead}.deadbeef.tmp"  # another file's: left alone
    other.write_bytes(b"z")
    tg.save({"w": tg.ones(2)}, tmp_path / "ckpt.safetensors")
    assert not stale.exists()
    assert live.exists() and other.exists()
    np.testing.assert_array_equal(tg.load(tmp_path / "ckpt.safetensors")["w"].numpy(), [1.0, 1.0])
