"""Read a pipeline file into plain data while remembering where every value came from.

ruamel.yaml keeps line and column for each key and item; :func:`load_yaml` walks the tree once,
interpolates ``${VAR}`` / ``${VAR:-default}`` from the environment and returns the plain data
plus a map from each value's path to its (line, column), so every later error can point at it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

Path_ = tuple[str | int, ...]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_SECRET_KEYS = re.compile(r"(secret|jwt|password|passwd|token|api_key|private_key|credentials)", re.I)


@dataclass
class Problem:
    """One thing wrong with a pipeline file, with where it is and how to fix it."""

    path: Path_
    message: str
    hint: str | None = None
    line: int | None = None

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        field_ = ".".join(str(p) for p in self.path) or "(top level)"
        text = f"{where}: {field_}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class PipelineFileError(ConfigError):
    """Every problem found in a pipeline file (validation reports them all at once)."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        lines = [p.format(filename) for p in problems]
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{filename}: {len(problems)} {noun}:\n  " + "\n  ".join(lines))

    def __str__(self) -> str:
        return self.message


@dataclass
class LoadedYaml:
    data: Any
    filename: str
    positions: dict[Path_, int] = field(default_factory=dict)  # path -> 1-based line
    secrets: set[str] = field(default_factory=set)
    missing: list[Problem] = field(default_factory=list)
    values: int = 0  # values walked, aliases expanded (see MAX_VALUES)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), 1)


def load_yaml(path: Path, env: Mapping[str, str] | None = None) -> LoadedYaml:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    env = os.environ if env is None else env
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{filename}: no such pipeline file", hint="check the path; see pipelines/ for examples") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{filename}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          hint="save the file as UTF-8") from None
    except OSError as exc:  # a directory, no permission, a device that cannot be read
        raise ConfigError(f"{filename}: cannot read the pipeline file: {exc.strerror or exc}",
                          hint="give the path of a YAML pipeline file") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"not valid YAML: {exc.problem or exc.context}"
        opened = exc.context_mark.line + 1 if exc.context_mark and exc.problem else None
        if opened and opened != line:
            # where the unclosed bracket or the mapping began is often the line to fix
            message += f" ({exc.context} that starts on line {opened})"
        hint = "fix the YAML syntax at that line (indentation, a missing colon, an unclosed quote or bracket)"
        if "duplicate key" in str(exc.problem):
            hint = "a key may appear only once in a mapping: remove or rename one of the two"
        raise PipelineFileError(filename, [Problem((), message, hint, line)]) from None
    except Exception as exc:  # ruamel raises several unmarked errors (duplicate keys, bad tags)
        raise PipelineFileError(filename, [Problem((), f"not valid YAML: {exc}".splitlines()[0],
                                                   "fix the YAML syntax", None)]) from None
    loaded = LoadedYaml(None, filename, {(): 1})
    loaded.data = _walk(raw, (), loaded, env)
    return loaded


#: A pipeline file is a few hundred values; far more means aliases expanding exponentially
#: (a "billion laughs" file), refused before it eats the machine.
MAX_VALUES = 100_000


def _walk(node: Any, path: Path_, out: LoadedYaml, env: Mapping[str, str]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    out.values += 1
    if out.values > MAX_VALUES:
        raise PipelineFileError(out.filename, [Problem(
            path[:1], f"more than {MAX_VALUES:,} values once YAML aliases are expanded",
            "a pipeline file needs no deeply nested aliases (&name / *name); write the values out", out.line_of(path[:1]))])

    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            try:
                line = node.lc.key(key)[0] + 1
            except (KeyError, TypeError, AttributeError):
                line = out.line_of(path)
            key_s = str(key)
            out.positions[path + (key_s,)] = line
            result[key_s] = _walk(value, path + (key_s,), out, env)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            try:
                out.positions[path + (i,)] = node.lc.item(i)[0] + 1
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_walk(value, path + (i,), out, env))
        return items
    if isinstance(node, str):
        return _interpolate(str(node), path, out, env)
    if node is None or isinstance(node, (bool, int, float)):
        return node
    # dates, timestamps and other scalars: keep their text so pydantic parses them
    return node if not hasattr(node, "isoformat") else node.isoformat()


def _interpolate(value: str, path: Path_, out: LoadedYaml, env: Mapping[str, str]) -> str:
    secret_field = any(_SECRET_KEYS.search(str(p)) for p in path if isinstance(p, str))

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            resolved = env[name]
        elif default is not None:
            resolved = default
        else:
            out.missing.append(Problem(path, f"environment variable {name} is not set",
                                       f"export {name}=... before running, or write ${{{name}:-default}}",
                                       out.line_of(path)))
            return ""
        if secret_field:
            out.secrets.add(resolved)
        return resolved

    if "${" in _VAR.sub("", value):
        # A "${" that opens no variable reference (shell syntax such as ${$(cmd)}) would otherwise
        # reach the option as literal text: refused, so nothing that looks evaluated is silently kept.
        shown = value if not secret_field else "<secret>"
        out.missing.append(Problem(path, f"{shown!r} is not a variable reference",
                                   "write ${NAME} or ${NAME:-default} (NAME: letters, digits and _); "
                                   "rcetl runs no shell and evaluates nothing else", out.line_of(path)))
        return value
    result = _VAR.sub(sub, value)
    if secret_field and result and result == value and not value.startswith("$"):
        # a literal secret in the file: still masked in output (and validate warns about it)
        out.secrets.add(result)
    return result
