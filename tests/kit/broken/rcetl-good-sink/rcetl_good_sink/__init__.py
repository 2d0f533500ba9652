"""A record sink that counts what it is given (enough to be listed and used by a pipeline)."""

import json

import rcetl


class GoodConfig(rcetl.PluginConfig):
    path: str = "good.jsonl"


class GoodSink(rcetl.RecordSink):
    config_model = GoodConfig
    description = "works"

    def write(self, records):
        with open(self.ctx.resolve(self.config.path), "a") as fh:
            for item in records:
                fh.write(json.dumps({"stream": item.stream, "key": item.key}) + "\n")


@rcetl.hookimpl
def rcetl_sinks():
    return [rcetl.SinkEntry("good-sink", "rcetl_good_sink:GoodSink")]
