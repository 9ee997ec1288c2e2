"""pytest-benchmark of 100,000 Monte Carlo draws; prints the time, asserts no speed."""

import numpy as np
import pytest

from tippingpoint.calculator.bench import bench_case
from tippingpoint.calculator.montecarlo import simulate


@pytest.mark.slow
def test_monte_carlo_100k_draws(benchmark) -> None:
    params, spec, varied = bench_case()
    edge, cloud = benchmark.pedantic(
        simulate, args=(params, spec, varied, 100_000, 0), rounds=3, iterations=1
    )
    assert edge.shape == cloud.shape == (100_000,)
    assert np.all(np.isfinite(edge)) and np.all(np.isfinite(cloud))
