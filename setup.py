"""Build the Cython settlement kernel; everything else is declared in pyproject.toml.

Set SETTLEMENT_DEBUG=1 at build time to compile the kernel's expensive invariant checks
(bounds checks and per-claim balance assertions) into the extension.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

DEBUG = os.environ.get("SETTLEMENT_DEBUG", "0") == "1"

extensions = [
    Extension(
        "settlement._core",
        ["settlement/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            # Read by the kernel as a C constant, so the checks it guards compile away when 0.
            ("SETTLEMENT_DEBUG", "1" if DEBUG else "0"),
        ],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
]

PACKAGES = find_packages(include=["settlement", "settlement.*", "adapters", "adapters.*"])

setup(
    packages=PACKAGES + ["settlement_rules"],
    package_dir={"settlement_rules": "rules"},
    package_data={
        "settlement_rules": ["**/*.json", "**/*.md", "**/*.csv"],
        # The migration runner reads every adapters package's migrations/*.sql at run time,
        # so a non-editable install must carry them.
        **{name: ["migrations/*.sql"] for name in PACKAGES if name.startswith("adapters.")},
    },
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": DEBUG,
        },
    ),
)
