"""Value checks without a GPU stall (tinygrad_pt/checks.py).

On the CPU a bad value raises in the op that used it. On the GPU the check is queued and raises
at the next host read. The queue is exercised here on NumPy arrays by making checks.py queue them
as it queues CuPy arrays (the GPU itself is covered by the gpu-marked tests)."""
import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt import checks
from tinygrad_pt.nn import functional as F


@pytest.fixture
def queued(monkeypatch):
    """checks.py queues every check, as it does for CuPy arrays."""
    monkeypatch.setattr(checks, "_queue_on_device", lambda a: True)
    yield
    checks._pending.clear()


def _raiser(message):
    def raise_error():
        raise IndexError(message)
    return raise_error


def test_on_the_cpu_a_check_raises_at_once():
    with pytest.raises(IndexError, match="bad index 3"):
        checks.check_values(np.array([False, True]), _raiser("bad index 3"))
    checks.check_values(np.array([False, False]), _raiser("never"))
    assert checks.pending_checks() == 0
    with pytest.raises(IndexError, match=r"embedding: index 7 is out of range for 5 embeddings"):
        F.embedding(tg.tensor(np.array([1, 7])), tg.randn(5, 3))


@pytest.mark.parametrize("read", ["item", "numpy", "bool", "float", "tolist"])
def test_a_queued_failure_raises_at_the_next_host_read(queued, read):
    loss = tg.tensor(np.float32(1.5))
    checks.check_values(np.array([False]), _raiser("first is fine"))
    checks.check_values(np.array([False, True]), _raiser("embedding: index 7"))
    checks.check_values(np.array([True]), _raiser("a later failure"))
    assert checks.pending_checks() == 3  # nothing raised, nothing waited for
    with pytest.raises(IndexError, match="embedding: index 7"):  # the first failure, in order
        {"item": loss.item, "numpy": loss.numpy, "bool": lambda: bool(loss),
         "float": lambda: float(loss), "tolist": loss.tolist}[read]()
    assert checks.pending_checks() == 0  # drained, whatever the outcome
    assert loss.item() == 1.5


def test_a_full_queue_drains_itself(queued, monkeypatch):
    monkeypatch.setattr(checks, "MAX_PENDING", 3)
    checks.check_values(np.array([False]), _raiser("never"))
    checks.check_values(np.array([True]), _raiser("the second check failed"))
    assert checks.pending_checks() == 2
    with pytest.raises(IndexError, match="the second check failed"):
        checks.check_values(np.array([False]), _raiser("never"))  # the third: drains
    assert checks.pending_checks() == 0


def test_the_ops_route_their_value_checks_through_the_queue(queued):
    """Embedding, cross-entropy, integer-array getitem and BCE's range check do not sync."""
    w = tg.randn(5, 3, requires_grad=True)
    emb = F.embedding(tg.tensor(np.array([0, 4])), w)
    ce = F.cross_entropy(tg.randn(2, 4), tg.tensor(np.array([0, 3])))
    picked = w[tg.tensor(np.array([1, 2]))]
    bce = F.binary_cross_entropy(tg.tensor(np.array([0.25, 1.0], np.float32)),
                                 tg.tensor(np.array([1.0, 0.0], np.float32)))
    assert checks.pending_checks() == 4
    (emb.sum() + ce + picked.sum() + bce).backward()
    assert checks.pending_checks() == 4  # backward reads nothing back either
    assert np.isfinite(ce.item())  # the host read drains them: all passed
    assert checks.pending_checks() == 0


class _FakeDeviceArray:
    """Looks like a CuPy array to backend (its type's module starts with "cupy")."""
    __module__ = "cupy_fake"

    def get(self):
        return np.zeros(2)


def test_a_queued_failure_raises_at_a_transfer_to_the_host(queued):
    from tinygrad_pt import backend
    checks.check_values(np.array([True]), _raiser("embedding: index 9"))
    with pytest.raises(IndexError, match="embedding: index 9"):
        backend.to_device(_FakeDeviceArray(), "cpu")
    assert checks.pending_checks() == 0
    np.testing.assert_array_equal(backend.to_device(_FakeDeviceArray(), "cpu"), np.zeros(2))


def test_backend_imports_nothing_from_the_floors_above():
    # backend.py is the bottom floor (DESIGN.md): no import of tinygrad_pt, at module level or
    # inside a function (checks.py hooks itself in instead: backend.on_host_read).
    import ast
    import inspect
    from tinygrad_pt import backend
    tree = ast.parse(inspect.getsource(backend))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("tinygrad_pt"), \
                f"backend.py line {node.lineno} imports from {'.' * node.level}{node.module}"
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("tinygrad_pt") for a in node.names), node.lineno
