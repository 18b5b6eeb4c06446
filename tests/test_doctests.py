"""The docstring examples (``>>>``) of tinygrad_pt and tinygrad_pt.kernels run, so they cannot rot.

``pytest --doctest-modules`` over the source tree would import kernels/ as a top-level package
``kernels``, but it installs as ``tinygrad_pt.kernels`` (the package-dir mapping in
pyproject.toml) and its modules import each other by that name. So this file walks the installed
packages instead and runs each module's examples through doctest: one test per module, failing
with doctest's report.
"""
import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import tinygrad_pt
import tinygrad_pt.kernels
from tinygrad_pt.kernels import registry

# How many examples there were when this test was written (issue 12). Fewer found means the walk
# lost modules or a docstring lost its examples: either should fail, not pass quietly.
MIN_EXAMPLES = 65

# Array reprs wrap and pad by width; ELLIPSIS lets an example show only the start of long output.
OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _walk():
    """(module names, names of packages that failed to import during the walk), sorted."""
    failed = []
    names = {"tinygrad_pt", "tinygrad_pt.kernels"}
    # In an editable install tinygrad_pt.kernels is not under tinygrad_pt.__path__ (it is the
    # repository's kernels/ folder), so the walk over tinygrad_pt alone would miss it.
    for package in (tinygrad_pt, tinygrad_pt.kernels):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".",
                                          onerror=failed.append):
            names.add(info.name)
    return sorted(names), sorted(failed)


def _has_examples(name):
    # Read the source rather than import: most modules (the CLI, the training recipes, the CUDA
    # kernels) have no examples and need not be imported here.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as f:
        return ">>>" in f.read()


_NAMES, _FAILED = _walk()
# A package that failed to import during the walk is kept, so that its test says why.
MODULES = sorted({n for n in _NAMES if _has_examples(n)} | set(_FAILED))


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        # Every module imports without CuPy today (the CUDA kernels run under Numba's simulator
        # or are compiled on first launch); this is for one that some day cannot.
        if e.name and e.name.split(".")[0] == "cupy":
            pytest.skip(f"{name} cannot be imported without CuPy (pip install "
                        f"'tinygrad_pt[cuda12]'); its examples run where CuPy is installed")
        raise


def _doctests(module):
    return [t for t in doctest.DocTestFinder().find(module, module.__name__) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = _import(name)
    tests = _doctests(module)
    assert tests, (f"{name} contains '>>>' but doctest finds no examples in its docstrings; "
                   f"an example outside a docstring never runs")
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = []
    saved = registry.kernel_settings()  # an example that changes the kernels must not leak
    try:
        for test in tests:
            runner.run(test, out=report.append)
    finally:
        registry.set_kernels(**saved)
    if runner.failures:
        pytest.fail(f"{runner.failures} of {runner.tries} examples failed in {name}:\n"
                    + "".join(report), pytrace=False)


def test_examples_are_found():
    assert not _FAILED, f"packages that failed to import during the walk: {_FAILED}"
    # Modules that need CuPy are counted only where they import, so the floor counts the others.
    counts = {}
    for name in MODULES:
        try:
            counts[name] = sum(len(t.examples) for t in _doctests(importlib.import_module(name)))
        except ModuleNotFoundError as e:
            if not (e.name and e.name.split(".")[0] == "cupy"):
                raise
    total = sum(counts.values())
    assert total >= MIN_EXAMPLES, (f"found {total} docstring examples, expected at least "
                                   f"{MIN_EXAMPLES}: {counts}")
    assert "tinygrad_pt.kernels.registry" in counts, "the walk missed tinygrad_pt.kernels"
