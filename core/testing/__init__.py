"""rcetl.testing: the contract suite and fixtures for plugin authors (a pytest plugin, ``pytest11``).

::

    from rcetl.testing import RecordSinkContract

    class TestMySink(RecordSinkContract):
        plugin = "mysink"
        config = {"path": "archive"}

Fixtures (``rcetl_sandbox``, ``rcetl_ground_truth``, ``rcetl_dataset``, ``rcetl_pipeline``,
``rcetl_run_context``) are available in every test once rcetl is installed. See
docs/plugin-authors.md.
"""

from __future__ import annotations

from .contract import BlobSinkContract, RecordSinkContract, SimulatedCrash, SinkContract
from .dataset import ContractDataset, load_dataset, records_from_ground_truth
from .harness import SinkCase, SinkHarness, make_context, plugin_manager
from .pipeline import PipelineBuilder, PipelineRun

__all__ = [
    "BlobSinkContract",
    "ContractDataset",
    "PipelineBuilder",
    "PipelineRun",
    "RecordSinkContract",
    "SimulatedCrash",
    "SinkCase",
    "SinkContract",
    "SinkHarness",
    "load_dataset",
    "make_context",
    "plugin_manager",
    "records_from_ground_truth",
]
