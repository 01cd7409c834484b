"""The load model of docs/scaling.md against deploy/k8s: the manifests let every service scale as far as the
stated workload needs, and the model grows with the workload as a load model must."""

from __future__ import annotations

import pytest

from bench.capacity import SERVICES, Workload, allowed_replicas, cores, gpus, pods, shortfalls


def test_the_manifests_let_every_service_reach_what_the_stated_workload_needs() -> None:
    assert shortfalls(Workload()) == []


def test_every_service_and_triton_has_its_replicas_in_the_manifests() -> None:
    allowed = allowed_replicas()
    for name in (*SERVICES, "triton"):
        low, high = allowed[name]
        assert 1 <= low <= high, name


@pytest.mark.parametrize("factor", [10, 100])
def test_cores_grow_in_proportion_and_pods_and_gpus_with_them(factor: int) -> None:
    base, grown = Workload(), Workload().scaled(factor)
    for process, needed in cores(base).items():
        assert cores(grown)[process] == pytest.approx(needed * factor)
    assert all(pods(grown)[service] >= pods(base)[service] for service in SERVICES)
    assert gpus(grown) >= gpus(base) * factor // 2


def test_the_stated_workload_in_rates() -> None:
    rates = Workload().rates()
    # 10 million images a day, the busiest hour at three times the average.
    assert rates["image"] == pytest.approx(10_000_000 / 86_400 * 3)
    # 1,000 labellers, a save of 5 boxes every 30 s each.
    assert rates["object"] == pytest.approx(1_000 / 30 * 5)
