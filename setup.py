"""Which packages install: specvoice, and the top-level kernels/ folder as `specvoice_kernels`.

Everything else is in pyproject.toml. The rename keeps a top-level `kernels` module out of site-packages,
where it would shadow the Hugging Face `kernels` package that transformers probes for and imports.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["specvoice*"]) + ["specvoice_kernels"],
      package_dir={"specvoice_kernels": "kernels"})
