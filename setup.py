"""Package layout that pyproject alone cannot express.

The design card keeps `experiments/`, `kernels/` and `conf/` at the top of the checkout, but they
must not install as generic top-level import names (transformers imports an unrelated package
called `kernels` when one is present). They install as `celine.experiments`, `celine.kernels` and
`celine.conf`; a new room is found here without editing this file.
"""

from setuptools import find_packages, setup


def _subpackages(prefix: str, where: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(where)]


setup(
    packages=find_packages(include=["celine", "celine.*"])
    + _subpackages("celine.experiments", "experiments")
    + _subpackages("celine.kernels", "kernels")
    + ["celine.conf"],
    package_dir={
        "celine.experiments": "experiments",
        "celine.kernels": "kernels",
        "celine.conf": "conf",
    },
    package_data={"celine.conf": ["*.yaml", "**/*.yaml"], "": ["*.md"]},
    include_package_data=False,
)
