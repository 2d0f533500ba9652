"""Package discovery for the folder layout the project fixed.

The folders ``core/``, ``plugins/`` and ``sandbox/`` install as ``rcetl``, ``rcetl.plugins`` and
``rcetl.sandbox``. ``find_packages`` cannot rename while it discovers, so the list is built here;
everything else lives in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

ROOTS = {"rcetl": "core", "rcetl.plugins": "plugins", "rcetl.sandbox": "sandbox"}


def _packages() -> list[str]:
    found: list[str] = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return found


setup(packages=_packages(), package_dir=ROOTS)
