"""Names the design's public API promises, where the code behind them lives on another floor."""
import subprocess
import sys

import tinygrad_pt as tg


def test_the_transfer_tools_are_public_in_tg_models():
    from tinygrad_pt.train import transfer
    assert tg.models.LinearProbe is transfer.LinearProbe
    assert tg.models.fine_tune is transfer.fine_tune
    assert tg.models.train_from_scratch is transfer.train_from_scratch
    assert {"LinearProbe", "fine_tune", "train_from_scratch"} <= set(tg.models.__all__)


def test_importing_the_models_does_not_import_the_train_floor():
    code = ("import sys, tinygrad_pt.models; "
            "print(any(m.startswith('tinygrad_pt.train') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
