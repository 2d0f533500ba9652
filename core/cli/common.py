"""Helpers the command modules share: loading a pipeline with a clean error exit."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..config import CheckedPipeline
    from ..config.model import Pipeline
    from ..registry import PluginManager

PIPELINE_ARG = typer.Argument(..., help="The pipeline file (YAML), e.g. pipelines/nightly.yaml.",
                              show_default=False)


def load(path: Path) -> tuple[Pipeline, PluginManager]:
    """Validate ``path`` or exit 2 with every problem listed; nothing is written before this."""
    from ..errors import RcetlError
    from .output import fail

    checked, pm = check(path)
    try:
        return checked.build(), pm
    except RcetlError as exc:
        raise typer.Exit(fail(exc)) from None


def check(path: Path) -> tuple[CheckedPipeline, PluginManager]:
    """Validate ``path`` (without loading the sink classes validation can do without) or exit 2."""
    from ..config import check_pipeline_file
    from ..errors import RcetlError
    from ..registry import get_plugin_manager
    from .output import fail

    pm = get_plugin_manager()
    try:
        return check_pipeline_file(path, pm=pm), pm
    except RcetlError as exc:
        raise typer.Exit(fail(exc)) from None


def parse_date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD or an ISO-8601 time",
                                 param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
