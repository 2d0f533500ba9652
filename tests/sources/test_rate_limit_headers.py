"""rcetl's RingCentral client learns each group's limit from the X-Rate-Limit-* headers.

The sandbox serves non-default plans (``Sandbox(plan=...)``) so that the headers differ from the
client's built-in standard-plan defaults, and counts from its own request log, on its own scaled
clock, what the client really sent per window. Without these, a client that ignored the headers
would pass every other test: the sandbox's default limits equal the client's defaults.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rcetl.plugins.sources.ringcentral.throttling import DEFAULT_LIMITS, HEAVY
from rcetl.sandbox import Sandbox

from .conftest import connect, make_ctx

SCALE = 30.0  # a 60 s window lasts 2 s
WINDOW = 60.0  # API seconds, as the sandbox's clock counts them
WORKERS = 8  # more threads than the budget allows at once, so only the budget can hold them back


def _heavy_requests(sb: Sandbox, tmp, n: int) -> None:
    """``n`` Heavy requests (call-log pages) sent by rcetl's client from WORKERS threads."""
    conn = connect(sb, make_ctx(tmp))
    try:
        url = conn.url("/restapi/v1.0/account/~/call-log")
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda _: conn.client.get_json(url, params={"perPage": 1, "dateFrom": "2000-01-01T00:00:00Z"}),
                          range(n)))
    finally:
        conn.close()


def _heavy_times(sb: Sandbox) -> list[float]:
    return [at for at, group, _ in sb.request_log() if group == HEAVY]


def _most_in_any_window(times: list[float]) -> int:
    """The most requests that arrived within any 60 API seconds (the server's sliding window)."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - WINDOW:
            first += 1
        best = max(best, last - first + 1)
    return best


def _per_window(times: list[float]) -> list[int]:
    """Requests in each whole window from the first request on (the unfinished last one left out)."""
    start, end = times[0], times[-1]
    whole = int((end - start) // WINDOW)
    return [sum(1 for t in times if start + k * WINDOW <= t < start + (k + 1) * WINDOW) for k in range(whole)]


def test_heavy_5_is_learned_from_the_first_answers(tmp_path):
    with Sandbox(seed=11, size="tiny", time_scale=SCALE, plan={"Heavy": 5}) as sb:
        _heavy_requests(sb, tmp_path, 16)
        log = [(at, status) for at, group, status in sb.request_log() if group == HEAVY]
        # What was in flight before the first answer came back could not know the plan; every
        # request sent once a window has passed since then was paced by the learned limit.
        learned = [at for at, _ in log if at >= log[0][0] + WINDOW]
        assert len(learned) >= 10 and _most_in_any_window(learned) <= 5
        assert [status for at, status in log if at >= log[0][0] + WINDOW] == [200] * len(learned)
        assert sum(1 for _, status in log if status == 200) == 16


def test_heavy_5_never_sends_a_sixth_in_a_window(tmp_path):
    with Sandbox(seed=11, size="tiny", time_scale=SCALE, plan={"Heavy": 5}) as sb:
        _heavy_requests(sb, tmp_path, 16)
        times = _heavy_times(sb)
        assert sb.counters()["throttled"] == 0
        assert _most_in_any_window(times) <= 5
        assert len(times) == 16, "every request was sent once: none was answered 429 and retried"


def test_heavy_40_is_used(tmp_path):
    with Sandbox(seed=11, size="tiny", time_scale=SCALE, plan={"Heavy": 40}) as sb:
        _heavy_requests(sb, tmp_path, 40 * 3 + 20)
        times = _heavy_times(sb)
        assert sb.counters()["throttled"] == 0
        windows = _per_window(times)
        assert len(windows) >= 3
        utilisation = [n / 40 for n in windows]
        # Every whole window counts, the first too: the client must learn 40 from its first answers.
        assert min(utilisation) >= 0.95, f"Heavy use per window {utilisation} (limit 40)"


def test_without_headers_the_documented_defaults_apply(tmp_path):
    # The server would allow 40, but says nothing: the client must keep to the standard plan (10).
    with Sandbox(seed=11, size="tiny", time_scale=SCALE, plan={"Heavy": 40}, rate_headers=False) as sb:
        _heavy_requests(sb, tmp_path, DEFAULT_LIMITS[HEAVY] * 2 + 5)
        times = _heavy_times(sb)
        assert sb.counters()["throttled"] == 0
        assert _most_in_any_window(times) == DEFAULT_LIMITS[HEAVY]
        assert min(_per_window(times)) >= DEFAULT_LIMITS[HEAVY] * 0.9  # and uses them
