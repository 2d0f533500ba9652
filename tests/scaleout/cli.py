"""``python -m tests.scaleout.cli ARGS``: the ``rcetl`` command with the test plugins registered.

Worker subprocesses and the submitting command of the scale-out tests run through this, so the
test source is known on both sides exactly as an installed third-party plugin would be.
"""

from __future__ import annotations

import sys

from rcetl.cli.main import main
from rcetl.registry import get_plugin_manager
from tests.core import fakesource
from tests.scaleout import ledger

if __name__ == "__main__":
    get_plugin_manager([ledger, fakesource])
    main(sys.argv[1:])
