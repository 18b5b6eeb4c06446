"""The README's API tour runs as written (so it cannot rot)."""
import pathlib
import re

import tinygrad_pt as tg
from tinygrad_pt.kernels import registry

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_api_tour_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    blocks = re.findall(r"## A tour of the API\n\n```python\n(.*?)```", text, re.S)
    assert blocks, "README lost its API tour"
    monkeypatch.chdir(tmp_path)  # the tour saves a checkpoint in the working directory
    saved = registry.kernel_settings()
    try:
        exec(compile(blocks[0], "README.md (tour)", "exec"), {})
    finally:
        tg.set_kernels(**saved)
    assert (tmp_path / "mlp.safetensors").exists()
    assert "digraph" in capsys.readouterr().out
