"""Pipeline files: load, interpolate, validate (no network), and describe as JSON Schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..registry import PluginManager, get_plugin_manager
from ..secrets import register_secret
from .model import Pipeline
from .validate import CheckedPipeline, check_pipeline
from .yamlsource import PipelineFileError, Problem, load_yaml

__all__ = ["CheckedPipeline", "Pipeline", "PipelineFileError", "Problem", "check_pipeline_file", "load_pipeline"]


def load_pipeline(path: str | os.PathLike[str], *, pm: PluginManager | None = None,
                  env: Mapping[str, str] | None = None) -> Pipeline:
    """Read and validate a pipeline file. Raises :class:`PipelineFileError` listing every problem."""
    return check_pipeline_file(path, pm=pm, env=env).build()


def check_pipeline_file(path: str | os.PathLike[str], *, pm: PluginManager | None = None,
                        env: Mapping[str, str] | None = None) -> CheckedPipeline:
    """Validate a pipeline file without loading the sink classes validation can do without
    (``rcetl validate``); ``.build()`` makes the :class:`Pipeline`. Raises :class:`PipelineFileError`."""
    file = Path(path)
    loaded = load_yaml(file, env)
    for secret in loaded.secrets:  # mask before anything can print them
        register_secret(secret)
    return check_pipeline(loaded, pm or get_plugin_manager(), file)
