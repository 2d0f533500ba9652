"""The named mutations `make mutate` applies: each breaks one invariant of rcetl on purpose (one exact
text replacement in one file) and names the tests that must catch it. docs/mutation.md records the
results and why each survivor is acceptable or was fixed.

A mutation whose text is no longer in its file is reported as stale (the code moved): update its
``find`` here so that it still breaks the same invariant.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    invariant: str
    path: str  # relative to the repository root
    find: str  # exact text, present once in the file
    replace: str
    tests: tuple[str, ...]  # pytest arguments (paths, node ids, -k filters) that must fail


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "checkpoint-before-write",
        "a checkpoint is saved only after every record before it is written (docs/architecture.md, invariant 1)",
        "core/engine/session.py",
        "                if isinstance(item, Checkpoint):\n                    if not flush():",
        "                if isinstance(item, Checkpoint):\n"
        "                    self.state.put_checkpoint(name, sid, task.stream, item.partition or task.partition,\n"
        "                                              item.value)\n"
        "                    if not flush():",
        ("tests/core/test_engine_kills.py",
         "tests/reliability/test_crash.py::test_sigkill_inside_every_step[sqlite+folder]"),
    ),
    Mutation(
        "checksum-skip",
        "a blob sink reports a binary stored only when the store's checksum equals the downloaded one",
        "core/blobs.py",
        "        if reported != expected:\n            raise IntegrityError(",
        "        if reported != expected and False:\n            raise IntegrityError(",
        ("tests/sinks_blob/test_contract.py", "tests/sinks_blob/test_dropbox.py",
         "tests/e2e/test_sinks_with_sandbox.py::test_s3_corrupted_upload_is_caught_then_the_next_run_completes"),
    ),
    Mutation(
        "header-ignoring",
        "the client learns its rate budget from RingCentral's X-Rate-Limit-* headers",
        "plugins/sources/ringcentral/http.py",
        '        limit = _header_number(headers, "X-Rate-Limit-Limit")\n'
        '        remaining = _header_number(headers, "X-Rate-Limit-Remaining")\n'
        '        window = _header_number(headers, "X-Rate-Limit-Window")',
        "        limit = remaining = window = None",
        ("tests/sources/test_rate_limit_headers.py",),
    ),
    Mutation(
        "content-check-skip",
        "a download that is not the file the source announced is never stored (a failed item instead)",
        "core/engine/archiver.py",
        "            if not verdict.ok:",
        "            if not verdict.ok and False:",
        ("tests/sources/test_content_checks.py",),
    ),
    Mutation(
        "binary-identity",
        "a binary's identity is unique: attachments are numbered per message, so their id includes the message's",
        "plugins/sources/message_store.py",
        '    return f"attachment-{message_id}-{attachment_id}"',
        '    return f"attachment-{attachment_id}"',
        ("tests/e2e/test_attachment_identity.py",),
    ),
)
