"""`make mutate`: apply each named mutation (tests/mutation/mutations.py) to a temporary copy of the
tree, run the tests that must catch it, and report which mutations were killed and which survived.

The working tree is never touched: the copy is made first (the working tree's files, or ``--ref REV``
for a commit), mutated and restored inside it, and deleted at the end (``--keep`` keeps it). The
copy runs with this virtualenv (tests/mutation/isolated.py puts it first on the import path).

Before any mutation the same tests run on the unmutated copy: a test that already fails proves
nothing. Exit status: 0 when every mutation was killed, 1 otherwise (survived, stale or error).

    python -m tests.mutation.run [--ref REV] [--only NAME ...] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import isolated
from .mutations import MUTATIONS, Mutation

PYTEST = ["-q", "-x", "-rf", "--timeout", "900", "-o", "addopts="]


def copy_working_tree(dest: Path, repo: Path = isolated.ROOT) -> Path:
    """The files git tracks or would track (untracked, not ignored) as they are in the working tree."""
    listing = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = repo / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def _failed_tests(output: str) -> list[str]:
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.M)


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    done = isolated.pytest(tree, [*PYTEST, *tests], timeout=1800)
    return done.returncode, done.stdout + done.stderr


def apply(tree: Path, m: Mutation) -> tuple[Path, str] | None:
    """Mutate the copy; returns (file, original text), or None when the mutation is stale."""
    path = tree / m.path
    if not path.exists():
        return None
    original = path.read_text()
    if original.count(m.find) != 1:
        return None
    path.write_text(original.replace(m.find, m.replace))
    return path, original


def mutate(tree: Path, m: Mutation) -> dict[str, object]:
    started = time.monotonic()
    applied = apply(tree, m)
    if applied is None:
        return {"name": m.name, "result": "stale", "detail": f"the text to replace is not (once) in {m.path}"}
    path, original = applied
    try:
        code, output = run_tests(tree, m.tests)
    finally:
        path.write_text(original)
    seconds = round(time.monotonic() - started, 1)
    if code == 1:
        return {"name": m.name, "result": "killed", "by": _failed_tests(output), "seconds": seconds}
    if code == 0:
        return {"name": m.name, "result": "survived", "seconds": seconds,
                "detail": f"{m.tests} all passed with the invariant broken"}
    return {"name": m.name, "result": "error", "seconds": seconds, "detail": f"pytest exit {code}: {output[-1500:]}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="mutate this commit instead of the working tree")
    parser.add_argument("--only", action="append", help="run only this mutation (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    tree = Path(tempfile.mkdtemp(prefix="rcetl-mutate-"))
    assert tree.resolve() != isolated.ROOT.resolve()
    try:
        if args.ref:
            isolated.export(tree, args.ref)
        else:
            copy_working_tree(tree)
        print(f"mutating a copy in {tree}", flush=True)
        results = []
        for m in chosen:
            print(f"== {m.name}: baseline ({' '.join(m.tests)})", flush=True)
            code, output = run_tests(tree, m.tests)
            if code != 0:
                results.append({"name": m.name, "result": "error",
                                "detail": f"the tests fail without the mutation (exit {code}): "
                                          f"{_failed_tests(output)[:5] or output[-1500:]}"})
            else:
                print(f"== {m.name}: mutated {m.path}", flush=True)
                results.append(mutate(tree, m))
            r = results[-1]
            print(f"   {r['result']}" + (f" by {', '.join(r['by'][:3])}" if r.get("by") else "")
                  + (f": {r['detail']}" if r.get("detail") else ""), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tree, ignore_errors=True)
    print("\n| mutation | result | caught by |\n|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['result']} | {', '.join(r.get('by', [])[:3]) or r.get('detail', '')[:120]} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["result"] == "killed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
