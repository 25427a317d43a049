"""Packages for the wheel: charnn, with the repository's corpora/ and checkpoints/ mapped inside it.

Everything else about the project is in pyproject.toml; only this list needs code, so that a new
subpackage of charnn/ or corpora/ is packaged without anyone editing a list.
"""

from setuptools import find_packages, setup

CORPORA = ["charnn.corpora"] + [f"charnn.corpora.{p}" for p in find_packages("corpora")]

setup(
    packages=find_packages(include=["charnn", "charnn.*"]) + CORPORA + ["charnn.checkpoints"],
    package_dir={"charnn.corpora": "corpora", "charnn.checkpoints": "checkpoints"},
)
