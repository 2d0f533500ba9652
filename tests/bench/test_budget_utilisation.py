"""The budget benchmark's utilisation figure (bench/bench_budget.py): the least time the limit
allows for N requests over the time they took. A perfect client scores 1 whatever N is; a client
late by some ms a window scores what that costs; the older requests-per-ideal figure stays below 1
for a perfect client whose last window is not full."""

from __future__ import annotations

import pytest

from bench.bench_budget import requests_per_ideal, utilisation

WINDOW, LIMIT = 0.6, 40


def perfect(n: int, late: float = 0.0) -> list[float]:
    """Request i of a client that sends ``LIMIT`` at once each window, ``late`` s late a window."""
    return [(i // LIMIT) * (WINDOW + late) for i in range(n)]


@pytest.mark.parametrize("n", [40, 1560, 1561, 1599])
def test_a_perfect_client_scores_one_whatever_its_last_window_holds(n):
    times = perfect(n)
    util, _ = utilisation(times, 0.0, times[-1], LIMIT, WINDOW)
    assert util == pytest.approx(1.0)


def test_the_older_figure_charged_a_perfect_client_for_a_last_window_it_did_not_need():
    times = perfect(1561)  # 39 full windows and one request
    assert requests_per_ideal(times, 0.0, LIMIT, WINDOW) == pytest.approx(1561 / 1600)


def test_a_client_late_each_window_scores_the_time_it_lost():
    times = perfect(1600, late=0.006)  # 6 ms late a window: 1 % of a 0.6 s window
    util, _ = utilisation(times, 0.0, times[-1], LIMIT, WINDOW)
    assert util == pytest.approx(40 * WINDOW / (39 * (WINDOW + 0.006) + WINDOW))
    assert 0.985 < util < 0.995


def test_the_wall_figure_counts_the_whole_process_time():
    times = perfect(400)
    _, wall = utilisation(times, 0.0, 2 * times[-1], LIMIT, WINDOW)
    assert wall == pytest.approx(10 * WINDOW / (2 * times[-1] + WINDOW))
