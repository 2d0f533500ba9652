"""A quick timing sanity check of the sandbox's hot paths (not a test: no timed assertions).

``python -m rcetl.sandbox.timing [--size large]`` prints the CPU and wall milliseconds to build
the data and to serve 1,000-record call-log pages (cold, then cached) and a message page, through
the WSGI app directly so that no socket or client parsing is measured. CPU time is the number to
read on a busy machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from werkzeug.test import Client

from .server import Sandbox

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.process_time() - c) * 1000, (time.perf_counter() - w) * 1000


def run(size: str = "large", pages: int = 3) -> list[str]:
    lines = []
    sb, cpu, wall = _timed(lambda: Sandbox(seed=1, size=size, limits=False))
    lines.append(f"generate {size}: {len(sb.data[0].calls)} calls, cpu {cpu:.0f} ms, wall {wall:.0f} ms")
    client = Client(sb.app.platform)
    token = client.post("/restapi/oauth/token", data={"grant_type": JWT_GRANT, "assertion": sb.jwt},
                        headers={"Authorization": "Basic " + _basic(sb)}).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for view in ("Simple", "Detailed"):
        for label in ("cold", "cached"):
            for page in range(1, pages + 1):
                query = {"dateFrom": "2000-01-01T00:00:00Z", "perPage": 1000, "page": page, "view": view}
                resp, cpu, wall = _timed(partial(client.get, "/restapi/v1.0/account/~/call-log", query_string=query, headers=auth))
                n = resp.get_data().count(b'"sessionId"')
                lines.append(f"call-log {view:8} {label:6} page {page}: {n} records, {len(resp.get_data())} bytes, "
                             f"cpu {cpu:.1f} ms, wall {wall:.1f} ms")
    query = {"dateFrom": "2000-01-01T00:00:00Z", "perPage": 1000}
    resp, cpu, wall = _timed(lambda: client.get("/restapi/v1.0/account/~/extension/~/message-store", query_string=query, headers=auth))
    lines.append(f"message-store page 1: {len(resp.get_json()['records'])} records, cpu {cpu:.1f} ms, wall {wall:.1f} ms")
    return lines


def _basic(sb: Sandbox) -> str:
    import base64

    return base64.b64encode(f"{sb.client_id}:{sb.client_secret}".encode()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rcetl.sandbox.timing", description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--pages", type=int, default=3)
    args = parser.parse_args()
    for line in run(args.size, args.pages):
        print(line, flush=True)


if __name__ == "__main__":
    main()
