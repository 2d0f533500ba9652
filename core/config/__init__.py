"""Pipeline files: load, interpolate, validate (no network), and describe as JSON Schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..registry import PluginManager, get_plugin_manager
from ..secrets import register_secret
from .model import Pipeline
from .validate import build_pipeline
from .yamlsource import PipelineFileError, Problem, load_yaml

__all__ = ["Pipeline", "PipelineFileError", "Problem", "load_pipeline"]


def load_pipeline(path: str | os.PathLike[str], *, pm: PluginManager | None = None,
                  env: Mapping[str, str] | None = None) -> Pipeline:
    """Read and validate a pipeline file. Raises :class:`PipelineFileError` listing every problem."""
    file = Path(path)
    loaded = load_yaml(file, env)
    for secret in loaded.secrets:  # mask before anything can print them
        register_secret(secret)
    return build_pipeline(loaded, pm or get_plugin_manager(), file)
