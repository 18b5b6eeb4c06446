"""Package discovery, the one thing pyproject.toml cannot say on its own.

kernels/ sits at the top of the repository but installs as tinygrad_pt.kernels (the package-dir
mapping in pyproject.toml). `[tool.setuptools.packages.find]` does not look through such a mapping,
and a hand-kept list once left tinygrad_pt.bench out of the wheel, so both trees are found here.
CI builds the wheel and runs the CLI from it to prove it.
"""
from setuptools import find_packages, setup

framework = find_packages(include=["tinygrad_pt", "tinygrad_pt.*"])
kernels = ["tinygrad_pt.kernels"] + ["tinygrad_pt.kernels." + name for name in find_packages("kernels")]
setup(packages=framework + kernels)
