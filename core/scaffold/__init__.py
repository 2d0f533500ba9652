"""``rcetl plugins new sink|source NAME``: a ready-to-publish plugin package from templates.

The generated package depends only on the public API (``import rcetl``), registers through the
``rcetl`` entry-point group like every built-in, and ships a test file that runs rcetl's contract
suite (:mod:`rcetl.testing`), so it passes its own tests the moment it is generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["Names", "ScaffoldError", "generate", "names_for"]

KINDS = ("sink", "source")
SINK_KINDS = ("records", "blobs")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

# template file (in rcetl.scaffold.templates) -> path in the generated package; {module} is replaced
_FILES = {
    "sink": {
        "sink.pyproject.toml.tmpl": "pyproject.toml",
        "sink.README.md.tmpl": "README.md",
        "sink.init.py.tmpl": "{module}/__init__.py",
        "sink.sink_{sink_kinds}.py.tmpl": "{module}/sink.py",
        "sink.test_contract.py.tmpl": "tests/test_contract.py",
        "sink.test_pipeline.py.tmpl": "tests/test_pipeline.py",
        "common.gitignore.tmpl": ".gitignore",
        "common.py.typed.tmpl": "{module}/py.typed",
    },
    "source": {
        "source.pyproject.toml.tmpl": "pyproject.toml",
        "source.README.md.tmpl": "README.md",
        "source.init.py.tmpl": "{module}/__init__.py",
        "source.source.py.tmpl": "{module}/source.py",
        "source.test_source.py.tmpl": "tests/test_source.py",
        "common.gitignore.tmpl": ".gitignore",
        "common.py.typed.tmpl": "{module}/py.typed",
    },
}


class ScaffoldError(ValueError):
    """The name or destination cannot be used; the message says why and what would work."""


@dataclass(frozen=True)
class Names:
    """Every name the templates need, derived from the plugin name (``demo-sink``)."""

    plugin: str  # the name in pipeline files: `plugin: demo-sink`
    dist: str  # the PyPI distribution: rcetl-demo-sink
    module: str  # the import name: rcetl_demo_sink
    cls: str  # the class prefix: DemoSink
    kind: str  # "sink" | "source"
    sink_kinds: str  # "records" | "blobs" (sinks only)

    def as_vars(self) -> dict[str, str]:
        import rcetl

        major_minor = ".".join(rcetl.__version__.split(".")[:2])
        contract = {"records": "RecordSinkContract", "blobs": "BlobSinkContract"}
        return {
            "plugin": self.plugin,
            "dist": self.dist,
            "module": self.module,
            "cls": self.cls,
            "rcetl_version": rcetl.__version__,
            "rcetl_requirement": f"rcetl>={major_minor},<{_next_minor(major_minor)}",
            "sink_kinds": self.sink_kinds,
            "contract": contract.get(self.sink_kinds, ""),
        }


def _next_minor(major_minor: str) -> str:
    major, minor = (int(x) for x in major_minor.split("."))
    # 0.x: every minor may break the plugin API (docs/plugin-authors.md, "Versioning"); 1.x+: a major
    return f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"


def names_for(kind: str, name: str, sink_kinds: str = "records") -> Names:
    if kind not in KINDS:
        raise ScaffoldError(f"cannot scaffold a {kind!r}; choose one of: {', '.join(KINDS)}")
    if sink_kinds not in SINK_KINDS:
        raise ScaffoldError(f"--kind must be one of: {', '.join(SINK_KINDS)}")
    if not _NAME.match(name) or len(name) > 40:
        raise ScaffoldError(
            f"{name!r} is not a usable plugin name: use 2-40 lower-case letters, digits and single "
            "hyphens, starting with a letter (e.g. 'parquet', 'my-warehouse')"
        )
    base = name[len("rcetl-"):] if name.startswith("rcetl-") else name
    dist = f"rcetl-{base}"
    stem = base[: -len(f"-{kind}")] if base.endswith(f"-{kind}") else base  # demo-sink -> DemoSink
    cls = "".join(part.capitalize() for part in stem.split("-"))
    return Names(plugin=base, dist=dist, module=dist.replace("-", "_"), cls=cls, kind=kind,
                 sink_kinds=sink_kinds if kind == "sink" else "")


def render(text: str, variables: dict[str, str]) -> str:
    """Replace ``{{ name }}`` placeholders; an unknown placeholder is a bug in a template."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in variables:
            raise KeyError(f"template placeholder {{{{{m.group(1)}}}}} has no value")
        return variables[m.group(1)]

    return _PLACEHOLDER.sub(sub, text)


def generate(kind: str, name: str, dest: Path | None = None, *, sink_kinds: str = "records",
             force: bool = False) -> Path:
    """Write the package for a new ``kind`` plugin called ``name``; returns its folder."""
    names = names_for(kind, name, sink_kinds)
    root = Path(dest) if dest is not None else Path.cwd() / names.dist
    if root.exists() and any(root.iterdir()) and not force:
        raise ScaffoldError(f"{root} exists and is not empty; choose another --dest or pass --force")
    variables = names.as_vars()
    templates = resources.files("rcetl.scaffold.templates")
    for template, target in _FILES[kind].items():
        template = template.format(sink_kinds=names.sink_kinds)
        path = root / target.format(module=names.module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(templates.joinpath(template).read_text(encoding="utf-8"), variables),
                        encoding="utf-8")
    return root
