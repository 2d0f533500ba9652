"""Build pure-Python wheels with the standard library, so the third-party tests install a real
package with pip (dist-info, entry points, version) without a build backend or network.

The package's ``pyproject.toml`` is the source of truth for its name, version and entry points.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

import tomllib


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out_dir: Path, name: str, version: str, files: dict[str, bytes],
                entry_points: dict[str, dict[str, str]], summary: str = "") -> Path:
    """A ``py3-none-any`` wheel of ``files`` (archive path -> bytes) with the given entry points."""
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    eps = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) + "\n"
                  for group, items in entry_points.items())
    contents = dict(files)
    contents[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                    f"Summary: {summary}\nRequires-Dist: rcetl>=0.1\n").encode()
    contents[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: rcetl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    contents[f"{info}/entry_points.txt"] = eps.encode()
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            zf.writestr(path, data)
    return wheel


def wheel_from_project(project: Path, out_dir: Path) -> Path:
    """A wheel of a setuptools project laid out like tests/thirdparty/rcetl-jsonl-sink."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    proj = meta["project"]
    files: dict[str, bytes] = {}
    for package in meta["tool"]["setuptools"]["packages"]:
        for source in sorted((project / package).rglob("*.py")):
            files[str(source.relative_to(project))] = source.read_bytes()
    return build_wheel(out_dir, proj["name"], proj["version"], files, proj.get("entry-points", {}),
                       proj.get("description", ""))
