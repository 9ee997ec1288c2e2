"""Benchmark of the Monte Carlo: ``python -m tippingpoint.calculator.bench`` prints the time.

Runs the full cost model over 100,000 draws of every input (the target is under a second on
one core) with the starter profiles and synthetic measured figures, several times, and prints
the best and median wall times and the draws per second. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tippingpoint.calculator.capacity import CloudFigures, EdgeFigures
from tippingpoint.calculator.inputs import (
    Profiles,
    cloud_inputs,
    edge_inputs,
    freeze,
    model_spec,
    varied_params,
)
from tippingpoint.calculator.model import ModelSpec
from tippingpoint.calculator.montecarlo import simulate
from tippingpoint.calculator.params import Basis, Param, ParamSet
from tippingpoint.profiles.loader import load_catalog


def bench_case(workload: str = "camera-analytics") -> tuple[ParamSet, ModelSpec, list[Param]]:
    """Inputs of a representative case: Pi 5 against a T4 instance over LTE."""
    catalog = load_catalog()
    profiles = Profiles(
        device=catalog.device("rpi5"),
        network=catalog.network("lte"),
        energy=catalog.energy("us-average"),
        workload=catalog.workload(workload),
    )
    cloud = catalog.cloud("gpu-t4-ondemand")
    edge = EdgeFigures(
        throughput=60.0, throughput_origin="synthetic", p99_ms=30.0, joules_per_inference=0.2
    )
    figures = CloudFigures(
        capacity_qps=400.0,
        capacity_basis=Basis.SLO_BOUND,
        capacity_origin="synthetic",
        server_p99_ms=12.0,
    )
    params = freeze({**edge_inputs(profiles, edge), **cloud_inputs(profiles, cloud, figures)})
    return params, model_spec(profiles, cloud, energy_from_power=False), varied_params(params)


def main(argv: list[str] | None = None) -> int:
    """Time ``--repeat`` runs of ``--draws`` draws and print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    params, spec, varied = bench_case()
    times = []
    for i in range(args.repeat):
        start = time.perf_counter()
        simulate(params, spec, varied, args.draws, seed=i)
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    print(
        f"Monte Carlo: {args.draws:,} draws x {len(varied)} inputs x {spec.months} months: "
        f"best {best:.3f} s, median {median:.3f} s ({args.draws / median:,.0f} draws/s); "
        f"target < 1 s: {'met' if median < 1.0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
