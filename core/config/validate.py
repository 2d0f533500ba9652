"""Turn a loaded pipeline file into a :class:`Pipeline`, or into every problem it has.

Checks the top-level shape, each plugin's options against that plugin's own config model,
routing of streams to sinks, and variables; makes no network call. Each problem names the line,
the field, what was expected, and how to fix it (with a did-you-mean for misspelt names).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

from ..errors import PluginError
from ..interfaces import PluginConfig, Sink, SinkEntry
from ..registry import PluginManager
from .model import ConnectionConf, Pipeline, PipelineModel, SinkConf, SourceConf
from .yamlsource import LoadedYaml, Path_, PipelineFileError, Problem

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
SINK_KEYS = {"plugin", "streams"}
SOURCE_KEYS = {"connection"}


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else None


class _Collector:
    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = list(loaded.missing)

    def add(self, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(tuple(path), message, hint, self.loaded.line_of(tuple(path))))

    def known(self, specs: Mapping[str, T], name: Any, path: Path_, what: str) -> T | None:
        """The plugin registered as ``name``, or None with an "unknown ``what``" problem at ``path``."""
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            self.add(path, f"unknown {what} {name!r}",
                     did_you_mean(str(name), specs) or f"installed: {', '.join(specs) or 'none'}")
        return spec

    def pydantic(self, exc: ValidationError, prefix: Path_, model: type[BaseModel]) -> None:
        fields = list(model.model_fields)
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = prefix + loc
            kind = err["type"]
            if kind == "extra_forbidden":
                name = str(loc[-1])
                hint = did_you_mean(name, fields) or f"valid options: {', '.join(fields) or '(none)'}"
                self.add(path, f"unknown option {name!r}", hint)
            elif kind == "missing":
                self.add(path, "required option is missing", f"add `{loc[-1]}:` here")
            else:
                got = err.get("input")
                shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
                self.add(path, f"{err['msg']}{shown}", _type_hint(model, loc))


def _type_hint(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    # Walk nested option models (``executor.type``) down to the field the error is about.
    field = None
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            break
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
        else:
            break
    if field is None:
        return None
    parts = []
    ann = field.annotation
    if get_origin(ann) is Literal:
        parts.append(f"expected one of: {', '.join(repr(a) for a in get_args(ann))}")
    elif ann is not None and not (isinstance(ann, type) and issubclass(ann, BaseModel)):
        parts.append(f"expected {getattr(ann, '__name__', str(ann)).replace('typing.', '')}")
    if field.description:
        parts.append(field.description)
    return "; ".join(parts) or None


@dataclass
class CheckedSink:
    """A sink whose options and routing passed validation. ``sink_class`` is None when its entry
    declares its options and kinds (:attr:`SinkEntry.declared`): the class is loaded by
    :meth:`CheckedPipeline.build`, so ``rcetl validate`` never imports it."""

    name: str
    entry: SinkEntry
    config: PluginConfig
    streams: set[str]
    kinds: frozenset[str]
    sink_class: type[Sink] | None
    path: Path_


@dataclass
class CheckedPipeline:
    """A pipeline file with every problem found (there were none): what ``rcetl validate`` reports.
    :meth:`build` loads the sink classes validation could do without and returns the :class:`Pipeline`."""

    name: str
    loaded: LoadedYaml
    connections: list[ConnectionConf]
    sources: list[SourceConf]
    sinks: list[CheckedSink]
    pipeline: dict[str, Any] = field(default_factory=dict)  # the Pipeline's other fields

    def build(self) -> Pipeline:
        c = _Collector(self.loaded)
        sinks = []
        for s in self.sinks:
            try:  # a declared entry's class serves any options as they are (SinkEntry.load checks)
                cls = s.sink_class or s.entry.load()
            except PluginError as exc:
                c.add(s.path + ("plugin",), exc.message, exc.hint)
                continue
            sinks.append(SinkConf(s.name, s.entry, cls, s.config, s.streams))
        if c.problems:
            raise PipelineFileError(self.loaded.filename, c.problems)
        return Pipeline(connections=self.connections, sources=self.sources, sinks=sinks, **self.pipeline)


def check_pipeline(loaded: LoadedYaml, pm: PluginManager, file: Path) -> CheckedPipeline:
    """Every problem of the file, or what it configures; imports only the plugin modules it names."""
    c = _Collector(loaded)
    data = loaded.data
    if not isinstance(data, dict):
        c.add((), "a pipeline file must be a mapping of options", "start with `pipeline: NAME`; see pipelines/demo.yaml")
        raise PipelineFileError(loaded.filename, c.problems)

    connection_specs = pm.connections()
    data = dict(data)
    # Shorthand: a top-level key named after a connection plugin (`ringcentral:`) is a connection
    # (a mapping) or several (a list of mappings with `name:`).
    shorthand: dict[str, tuple[Path_, dict[str, Any]]] = {}
    for plugin_name in connection_specs:
        if plugin_name not in data:
            continue
        value = data.pop(plugin_name)
        entries = value if isinstance(value, list) else [value]
        for i, entry in enumerate(entries):
            path: Path_ = (plugin_name, i) if isinstance(value, list) else (plugin_name,)
            if not isinstance(entry, dict):
                c.add(path, "expected a mapping of connection options")
                continue
            entry = dict(entry)
            name = str(entry.pop("name", plugin_name if not isinstance(value, list) else f"{plugin_name}-{i + 1}"))
            shorthand[name] = (path, {"plugin": plugin_name, **entry})

    try:
        model = PipelineModel.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                choices = list(PipelineModel.model_fields) + list(connection_specs)
                name = str(err["loc"][0])
                c.add((name,), f"unknown top-level option {name!r}",
                      did_you_mean(name, choices) or f"valid options: {', '.join(choices)}")
            else:
                one: InitErrorDetails = {"type": err["type"], "loc": err["loc"], "input": err["input"],
                                         "ctx": err.get("ctx", {})}
                c.pydantic(ValidationError.from_exception_data(exc.title, [one]), (), PipelineModel)
        raise PipelineFileError(loaded.filename, c.problems) from None

    base_dir = file.resolve().parent
    connections = _connections(model, shorthand, pm, c)
    sources = _sources(model, connections, pm, c)
    streams = {s: src.name for src in sources for s in src.spec.streams}
    before = len(c.problems)
    sinks = _sinks(model, streams, pm, c)
    if len(c.problems) == before:  # a broken sink would only cascade into routing errors
        _routing(sources, sinks, c)
    _observers(model, pm, c)
    for i, stream in enumerate(model.purge.streams if model.purge else []):
        if stream not in streams:
            c.add(("purge", "streams", i), f"unknown stream {stream!r}",
                  did_you_mean(stream, streams) or f"configured streams: {', '.join(streams)}")
    if c.problems:
        raise PipelineFileError(loaded.filename, c.problems)

    state_url = model.state or f"sqlite:///{base_dir / '.rcetl' / model.pipeline / 'state.db'}"
    if "://" not in state_url:  # a plain path means a SQLite file
        state_url = f"sqlite:///{state_url}"
    if state_url.startswith("sqlite:///") and not state_url.startswith("sqlite:////"):
        rel = state_url[len("sqlite:///"):]
        state_url = f"sqlite:///{(base_dir / rel).resolve()}" if rel and rel != ":memory:" else state_url
    spool = Path(model.spool_dir).expanduser() if model.spool_dir else base_dir / ".rcetl" / model.pipeline / "spool"
    if not spool.is_absolute():
        spool = base_dir / spool
    return CheckedPipeline(model.pipeline, loaded, connections, sources, sinks, dict(
        name=model.pipeline,
        file=file,
        base_dir=base_dir,
        state_url=state_url,
        spool_dir=spool,
        executor=model.executor,
        budgets=model.budgets,
        observers={k: dict(v or {}) for k, v in model.observers.items()},
        secrets=set(loaded.secrets),
        purge=model.purge,
    ))


def _plugin_config(model: type[M], options: dict[str, Any], path: Path_, c: _Collector) -> M | None:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        c.pydantic(exc, path, model)
        return None


def _connections(model: PipelineModel, shorthand: dict[str, tuple[Path_, dict[str, Any]]], pm: PluginManager,
                 c: _Collector) -> list[ConnectionConf]:
    specs = pm.connections()
    entries: dict[str, tuple[Path_, dict[str, Any]]] = {
        name: (("connections", name), dict(opts)) for name, opts in model.connections.items()}
    for name, value in shorthand.items():
        if name in entries:
            c.add(value[0], f"connection {name!r} is defined twice", "give each connection a distinct `name:`")
        entries[name] = value
    out = []
    for name, (path, options) in entries.items():
        spec = c.known(specs, options.pop("plugin", None), path + ("plugin",), "connection plugin")
        if spec is None:
            continue
        config = _plugin_config(spec.config, options, path, c)
        if config is not None:
            out.append(ConnectionConf(name, spec, config))
    return out


def _sources(model: PipelineModel, connections: list[ConnectionConf], pm: PluginManager,
             c: _Collector) -> list[SourceConf]:
    specs = pm.sources()
    if not model.sources:
        c.add(("sources",), "no sources configured", f"add at least one of: {', '.join(specs)}")
    out = []
    for name, raw in model.sources.items():
        path: Path_ = ("sources", name)
        spec = c.known(specs, name, path, "source")
        if spec is None:
            continue
        options = dict(raw or {})
        wanted = options.pop("connection", None)
        usable = [conn.name for conn in connections if conn.spec.name == spec.connection]
        if wanted is not None:
            names = [wanted] if isinstance(wanted, str) else list(wanted)
            for n in names:
                if n not in usable:
                    c.add(path + ("connection",), f"no {spec.connection} connection named {n!r}",
                          did_you_mean(n, usable) or f"defined: {', '.join(usable) or 'none'}")
            usable = [n for n in names if n in usable]
        elif not usable and not any(p.path[:1] == (spec.connection,) or p.path[:1] == ("connections",)
                                    for p in c.problems):  # a broken connection is reported already
            c.add(path, f"source {name!r} needs a {spec.connection!r} connection",
                  f"add a top-level `{spec.connection}:` block with the server and credentials")
        config = _plugin_config(spec.config, options, path, c)
        if config is not None:
            out.append(SourceConf(name, spec, config, usable))
    return out


def _sinks(model: PipelineModel, streams: dict[str, str], pm: PluginManager, c: _Collector) -> list[CheckedSink]:
    entries = pm.sinks()
    if not model.sinks:
        c.add(("sinks",), "no sinks configured", "add a sink, e.g. `archive: {plugin: sqlite, url: archive.db}`")
    out = []
    for name, raw in model.sinks.items():
        path: Path_ = ("sinks", name)
        options = dict(raw or {})
        plugin = options.pop("plugin", name)
        entry = c.known(entries, plugin, path + ("plugin",), "sink plugin")
        if entry is None:
            continue
        sink_class: type[Sink] | None = None
        try:  # only the sinks this file names are imported, and of some only their options model
            if entry.declared:
                config_model = entry.load_config()
                supported = None
            else:
                sink_class = entry.load()
                config_model, supported = sink_class.config_model, sink_class.supported_streams
        except PluginError as exc:  # a missing optional extra: the hint says what to install
            c.add(path + ("plugin",), exc.message, exc.hint)
            continue
        routed = options.pop("streams", None)
        if routed is None:
            wanted = set(streams) if supported is None else set(streams) & supported
        else:
            if isinstance(routed, str):
                routed = [routed]
            if not isinstance(routed, list):
                c.add(path + ("streams",), "expected a list of stream names", f"e.g. streams: [{', '.join(streams)}]")
                routed = []
            wanted = set()
            for i, stream in enumerate(routed):
                if stream not in streams:
                    c.add(path + ("streams", i), f"unknown stream {stream!r} (no configured source produces it)",
                          did_you_mean(str(stream), streams) or f"configured streams: {', '.join(streams) or 'none'}")
                elif supported is not None and stream not in supported:
                    c.add(path + ("streams", i), f"sink plugin {plugin!r} cannot take stream {stream!r}",
                          f"it takes: {', '.join(sorted(supported))}")
                else:
                    wanted.add(stream)
        config = _plugin_config(config_model, options, path, c)
        if config is None:
            continue
        if sink_class is not None:
            sink_class = sink_class.configured(config)
        kinds = sink_class.kinds() if sink_class is not None else entry.kinds or frozenset()
        out.append(CheckedSink(name, entry, config, wanted, kinds, sink_class, path))
    return out


def _observers(model: PipelineModel, pm: PluginManager, c: _Collector) -> None:
    specs = pm.observers()
    for name, options in model.observers.items():
        path: Path_ = ("observers", name)
        spec = c.known(specs, name, path, "observer")
        if spec is not None:
            _plugin_config(spec.config, dict(options or {}), path, c)


def _routing(sources: list[SourceConf], sinks: list[CheckedSink], c: _Collector) -> None:
    if not sinks or not sources:
        return
    for src in sources:
        for stream in src.spec.streams:
            if not any(stream in s.streams and "records" in s.kinds for s in sinks):
                c.add(("sources", src.name), f"no record sink takes stream {stream!r}: its records would be lost",
                      f"add {stream!r} to the `streams:` of a database sink, or remove the source")
