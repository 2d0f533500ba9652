"""Placeholder: the object-store base (key templates, sanitising, sidecars) is being written."""

from __future__ import annotations

from .interfaces import BlobSink, PluginConfig


class ObjectStoreConfig(PluginConfig):
    pass


class ObjectStoreSink(BlobSink):
    pass


def render_key(template: str, variables: dict) -> str:
    raise NotImplementedError


def sanitize_component(value: object) -> str:
    raise NotImplementedError
