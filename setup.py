"""Which packages install: specvoice, and kernels/specvoice_kernels/ (the Triton kernels).

Everything else is in pyproject.toml. The kernels live one folder down, in kernels/specvoice_kernels/, and
kernels/ itself has no __init__.py: Python run from the repository root (`python -m pytest`, `python -m
specvoice`, `python -c ...`) puts the root first on sys.path, and a top-level `kernels` package there would
shadow the Hugging Face `kernels` package that transformers imports (transformers.activations). A folder
without __init__.py is at most a namespace portion, which any installed regular package of that name beats.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["specvoice*"]) + ["specvoice_kernels"],
      package_dir={"specvoice_kernels": "kernels/specvoice_kernels"})
