"""The Krylov lower bound `bench.perf hessian` prints beside the speed target."""

from __future__ import annotations

import numpy as np
import pytest

from bench.perf.hessian import krylov_hvp_bound


def _random_symmetric(n: int, seed: int, spectrum: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = rng.standard_normal(n) if spectrum is None else spectrum
    return q @ np.diag(eig) @ q.T


def test_few_distinct_eigenvalues_exhaust_the_krylov_space() -> None:
    # A start vector reaches an invariant subspace after (number of distinct eigenvalues) products.
    h = _random_symmetric(12, 0, np.array([2.0] * 4 + [0.5] * 4 + [-3.0] * 4))
    bound = krylov_hvp_bound(h, starts=20)
    assert bound["max"] <= 3
    assert bound["lambda"][0] == pytest.approx(2.0)


def test_a_well_separated_top_needs_few_products() -> None:
    h = _random_symmetric(24, 1, np.concatenate([[1000.0], np.linspace(0.0, 1.0, 23)]))
    assert krylov_hvp_bound(h, starts=20)["max"] <= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_count_matches_an_independent_krylov_basis(seed: int) -> None:
    # The bound's count from one start, recomputed from a QR of [v, Hv, H^2 v, ...] (monomial basis:
    # fine at n = 8), with the Ritz value of each k-dimensional space compared to the true top.
    n, rtol = 8, 1e-4
    h = _random_symmetric(n, 10 + seed)
    top = np.linalg.eigvalsh(h)[-1]
    v = np.random.default_rng(seed).standard_normal(n)
    expected = n
    for k in range(1, n + 1):
        krylov = np.stack([np.linalg.matrix_power(h, j) @ v for j in range(k)], axis=1)
        q, _ = np.linalg.qr(krylov)
        if abs(np.linalg.eigvalsh(q.T @ h @ q)[-1] - top) <= rtol * abs(top):
            expected = k
            break
    bound = krylov_hvp_bound(h, rtol=rtol, starts=1, seed=seed)
    assert bound["min"] == bound["max"] == expected


def _result(space: int, method: str, hvps: int, wall: float, bound_min: int | None = None) -> dict:
    bound = None if bound_min is None else {"min": bound_min, "median": bound_min, "max": bound_min,
                                            "starts": 1, "lambda": [1.0, 0.5, -1.0]}  # fmt: skip
    return {"space": space, "method": method, "eigenvalue": 1.0, "hvps": hvps, "dim": 24, "wall_s": wall,
            "cpu_s": wall, "peak_rss_mb": 1000.0, "setup_rss_mb": 500.0, "cuda_peak_mb": None,
            "krylov_bound": bound}  # fmt: skip


def test_report_names_the_bound_that_rules_a_missed_speed_out(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from bench.perf.hessian import Targets, _report

    results = [
        _result(1, "reference", 24, 180.0, bound_min=12), _result(1, "lanczos", 15, 100.0),  # bound: x2
        _result(2, "reference", 26, 180.0, bound_min=3), _result(2, "lanczos", 3, 20.0),
        _result(3, "reference", 35, 300.0, bound_min=7), _result(3, "lanczos", 20, 200.0),  # bound: x5
    ]  # fmt: skip
    ok = _report(results, argparse.Namespace(device="cpu", space_list=[1, 2, 3]), Targets())
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("the trainer's method"))
    assert not ok
    assert "space 1: speed x1.80 FAIL, but no Krylov method reaches 3x here (at best x2.00)" in line
    assert "space 2: PASS" in line
    assert line.endswith("space 3: FAIL")  # x1.5 where x5 was possible: no excuse
