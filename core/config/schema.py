"""A JSON Schema of pipeline files, built from the core's model and every installed plugin's options."""

from __future__ import annotations

from typing import Any

from ..errors import PluginError
from ..registry import PluginManager
from .model import PipelineModel


def _inline(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    defs.update(schema.pop("$defs", {}))
    return schema


def pipeline_schema(pm: PluginManager) -> dict[str, Any]:
    root = PipelineModel.model_json_schema()
    defs: dict[str, Any] = root.setdefault("$defs", {})
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["title"] = "rcetl pipeline"
    props = root["properties"]

    props["sources"] = {
        "type": "object",
        "description": "source plugins and their options",
        "properties": {},
        "additionalProperties": False,
    }
    for name, spec in sorted(pm.sources().items()):
        sub = _inline(spec.config.model_json_schema(), defs)
        sub.setdefault("properties", {})["connection"] = {
            "description": "connection name(s) this source reads (default: every connection of its type)",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        }
        sub["description"] = spec.description or f"streams: {', '.join(spec.streams)}"
        props["sources"]["properties"][name] = {"anyOf": [sub, {"type": "null"}]}

    sink_variants = []
    for name, entry in sorted(pm.sinks().items()):
        try:
            sink_class = entry.load()
        except PluginError as exc:  # a sink whose extra is not installed: described, not expanded
            sink_variants.append({"title": f"sink {name}", "description": f"{exc.message} ({exc.hint})",
                                  "properties": {"plugin": {"const": name}}, "required": ["plugin"]})
            continue
        sub = _inline(sink_class.config_model.model_json_schema(), defs)
        if sink_class.description:
            sub["description"] = sink_class.description
        sub.setdefault("properties", {})["plugin"] = {"const": name}
        sub["properties"]["streams"] = {"type": "array", "items": {"type": "string"},
                                        "description": "streams routed to this sink (default: all it can take)"}
        sub["required"] = sorted(set(sub.get("required", [])) | {"plugin"})
        sub["title"] = f"sink {name}"
        sink_variants.append(sub)
    props["sinks"] = {"type": "object", "description": "named sinks",
                      "additionalProperties": {"oneOf": sink_variants}}

    conn_variants = []
    for name, conn_spec in sorted(pm.connections().items()):
        sub = _inline(conn_spec.config.model_json_schema(), defs)
        props[name] = {"description": f"a {name} connection (or a list of them, each with a name)",
                       "anyOf": [sub, {"type": "array", "items": sub}]}
        with_plugin = dict(sub)
        with_plugin["properties"] = {**sub.get("properties", {}), "plugin": {"const": name}}
        conn_variants.append(with_plugin)
    if conn_variants:
        props["connections"] = {"type": "object", "additionalProperties": {"oneOf": conn_variants}}
    return root
