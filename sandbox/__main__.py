"""``python -m rcetl.sandbox serve|export ...`` for scripts that do not go through ``rcetl``."""

from .cli import main

main()
