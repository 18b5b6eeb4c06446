"""Shared test set-up: hypothesis profiles and the device/torch skips.

Profiles: "ci" (bounded examples, selected by .ci/run and the README's test command) and "dev"
(deeper, for local bug hunting): HYPOTHESIS_PROFILE=dev pytest.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One thread per test process, through the framework's own switch (BLAS and the Numba kernels):
# the suite runs as two pytest-xdist workers on two cores, and multi-threaded pools in both then
# oversubscribe the cores (small matmuls became ~90x slower). Tests of the parallel paths ask for
# the threads they need.
import tinygrad_pt  # noqa: E402
from tinygrad_pt import threads as _threads  # noqa: E402

tinygrad_pt.set_num_threads(1)
# Numba's threads started by the framework, as its first kernel would start them, before a test
# reads Numba's own settings (which would start them with libgomp's spinning default, and warn).
_threads.prepare_numba()


def _cuda_ok():
    try:
        import tinygrad_pt as tg
        return tg.cuda_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    has_gpu = None
    for item in items:
        # the marker itself, not `"gpu" in item.keywords`: keywords also hold the names of the
        # folders above the test, and a checkout in a folder named gpu then skipped every test
        if item.get_closest_marker("gpu") is not None:
            if has_gpu is None:
                has_gpu = _cuda_ok()
            if not has_gpu:
                item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    import tinygrad_pt as tg
    tg.manual_seed(0)
    np.random.seed(0)
    yield
