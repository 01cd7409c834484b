"""A load model: the pods and the shared servers a workload needs, from the CPU cost per unit of work
that the benchmarks measured (docs/scaling.md says which benchmark gave each figure).

    python -m bench.capacity [--images-per-day N] [--labelers L] [--peak P] [--scale X] [--check]

The workload is turned into rates at its busiest hour (`--peak` times the day's average): new images
(each uploaded, thumbnailed and registered as a sample), inference passes over them (auto-label with its
labels written, embeddings), objects labellers save, the API requests around each save, and the
events delivered to the labellers' open event streams. Each rate times each process's CPU per unit is
the cores that process needs. A Loupe service runs one event loop per pod, so a pod is counted as one
core used up to its autoscaler's target: pods = cores / target, at least the manifests' minimum.
Postgres, NATS and S3 are counted in cores (one primary takes every write), Triton in GPUs from an
assumed throughput per GPU (no GPU benchmark has run yet).

It prints each service's pods against what deploy/k8s lets its autoscaler reach, and with `--check` exits
1 when a manifest allows fewer (tests/unit/test_capacity.py runs that check on the stated workload).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"

# CPU milliseconds per unit of work, by process, on the 2-core development machine (AMD EPYC), each from
# a benchmark's "CPU ... by process" line (docs/scaling.md has the runs):
#   image:    one 640×480 JPEG uploaded through presigned URLs, checked, thumbnailed, registered as a
#             sample (bench.ingest).
#   pass:     one image through an auto-label job: downloaded, decoded, sent to Triton, its boxes written
#             as a label (bench.inference). Its images are 64×64, so the inference service's 1.24 ms is
#             raised to 4 ms for a 640×480 JPEG's decode and resize (ingest's decode + thumbnail is 3.5).
#             An embeddings pass is counted the same.
#   object:   one box written by a bulk label call, 1,000 per call (bench.labels).
#   request:  one API call through the gateway, half of them writes (bench.gateway, its default run:
#             8 clients, create + get project).
#   delivery: one event written to one open event stream, 5 streams per project (bench.events).
COSTS_MS: dict[str, dict[str, float]] = {
    "image": {"s3": 6.3, "ingest": 3.5, "postgres": 0.9, "catalog": 0.63, "gateway": 0.53, "nats": 0.3},
    "pass": {
        "inference": 4.0,
        "postgres": 2.12,
        "annotation": 1.14,
        "s3": 0.9,
        "catalog": 0.74,
        "nats": 0.48,
        "gateway": 0.14,
    },
    "object": {"annotation": 0.0305, "postgres": 0.034, "catalog": 0.0025, "gateway": 0.009, "nats": 0.0025},
    "request": {"gateway": 0.452, "catalog": 0.604, "postgres": 0.604, "nats": 0.22},
    "delivery": {"gateway": 0.101},
}

UNITS = {
    "image": "new images",
    "pass": "inference passes",
    "object": "boxes saved",
    "request": "API calls",
    "delivery": "event deliveries",
}

# Per process kind: the autoscaler's CPU target (keda.yaml's cpu triggers, gateway-hpa.yaml), so a pod
# is added before its one event loop is saturated.
TARGET = 0.75
GATEWAY_TARGET = 0.70
SERVICES = ("gateway", "catalog", "annotation", "ingest", "inference")
SHARED = ("postgres", "nats", "s3")


@dataclass(frozen=True)
class Workload:
    images_per_day: float = 10_000_000
    labelers: float = 1_000
    peak: float = 3.0  # the busiest hour's rate over the day's average
    saves_per_labeler_hour: float = 120.0  # one labelled image every 30 s
    objects_per_save: float = 5.0
    requests_per_save: float = 8.0  # the console's calls around a save: next sample, image URL, labels, ...
    passes_per_image: float = 2.0  # Triton passes over each new image: auto-label and embeddings
    streams_per_project: float = 20.0  # labellers of one project, each with its event stream open
    gpu_images_per_s: float = 1_000.0  # one Triton GPU on the auto-label detector: assumed, not measured

    def rates(self) -> dict[str, float]:
        """Units of work per second at the busiest hour."""
        images = self.images_per_day / 86_400 * self.peak
        saves = self.labelers * self.saves_per_labeler_hour / 3600
        return {
            "image": images,
            "object": saves * self.objects_per_save,
            "request": saves * self.requests_per_save,
            # Each save is one label.changed event, seen by every stream open on its project.
            "delivery": saves * self.streams_per_project,
            "pass": images * self.passes_per_image,
        }

    def scaled(self, factor: float) -> Workload:
        return Workload(
            **{f.name: getattr(self, f.name) for f in fields(self)}
            | {"images_per_day": self.images_per_day * factor, "labelers": self.labelers * factor}
        )


def cores(workload: Workload) -> dict[str, float]:
    """CPU cores each process kind needs at the busiest hour."""
    needed: dict[str, float] = {}
    for unit, rate in workload.rates().items():
        for process, ms in COSTS_MS[unit].items():
            needed[process] = needed.get(process, 0.0) + rate * ms / 1000
    return needed


def pods(workload: Workload) -> dict[str, int]:
    """Pods of each service: its cores over the share of a core its autoscaler lets a pod reach."""
    needed = cores(workload)
    allowed = allowed_replicas()
    return {
        service: max(
            allowed[service][0],
            math.ceil(needed.get(service, 0.0) / (GATEWAY_TARGET if service == "gateway" else TARGET)),
        )
        for service in SERVICES
    }


def gpus(workload: Workload) -> int:
    return math.ceil(workload.rates()["pass"] / workload.gpu_images_per_s)


def allowed_replicas() -> dict[str, tuple[int, int]]:
    """(min, max) replicas of each service's autoscaler in deploy/k8s, and Triton's fixed replicas."""
    found: dict[str, tuple[int, int]] = {}
    for path in (K8S / "keda.yaml", K8S / "gateway-hpa.yaml", K8S / "triton.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            spec, name = doc["spec"], doc["metadata"]["name"]
            if doc["kind"] == "ScaledObject":
                found[name] = (spec["minReplicaCount"], spec["maxReplicaCount"])
            elif doc["kind"] == "HorizontalPodAutoscaler":
                found[name] = (spec["minReplicas"], spec["maxReplicas"])
            elif doc["kind"] == "Deployment":
                found[name] = (spec["replicas"], spec["replicas"])
    return found


def postgres_cores() -> float:
    """The CPU each instance of the CloudNativePG cluster requests (postgres.yaml)."""
    cluster = yaml.safe_load((K8S / "postgres.yaml").read_text())
    requested = str(cluster["spec"]["resources"]["requests"]["cpu"])
    return int(requested[:-1]) / 1000 if requested.endswith("m") else float(requested)


def shortfalls(workload: Workload) -> list[str]:
    """What deploy/k8s lets scale less far than the workload needs."""
    allowed = allowed_replicas()
    problems = [
        f"{service}: needs {count} pods, deploy/k8s allows {allowed[service][1]}"
        for service, count in pods(workload).items()
        if count > allowed[service][1]
    ]
    if gpus(workload) > allowed["triton"][1]:
        problems.append(f"triton: needs {gpus(workload)} GPUs, deploy/k8s runs {allowed['triton'][1]}")
    if cores(workload)["postgres"] > postgres_cores():
        problems.append(
            f"postgres: the primary needs {cores(workload)['postgres']:.1f} cores, postgres.yaml requests "
            f"{postgres_cores():g}"
        )
    return problems


def report(workload: Workload, factor: float) -> str:
    rates = workload.rates()
    needed, counted, allowed = cores(workload), pods(workload), allowed_replicas()
    lines = [
        f"workload ×{factor:g}: {workload.images_per_day:,.0f} images/day, {workload.labelers:,.0f} labellers, "
        f"busiest hour ×{workload.peak:g}",
        "  per second: " + ", ".join(f"{rate:,.0f} {UNITS[unit]}" for unit, rate in rates.items()),
        f"  {'':<12}{'cores':>8}{'pods':>8}{'k8s max':>9}   (Postgres: the cores its instances request)",
    ]
    for service in SERVICES:
        lines.append(f"  {service:<12}{needed.get(service, 0.0):>8.1f}{counted[service]:>8}{allowed[service][1]:>9}")
    for process in SHARED:
        requested = f"{postgres_cores():>9g}" if process == "postgres" else f"{'':>9}"
        lines.append(f"  {process:<12}{needed.get(process, 0.0):>8.1f}{'':>8}{requested}")
    lines.append(f"  {'triton GPUs':<12}{'':>8}{gpus(workload):>8}{allowed['triton'][1]:>9}")
    return "\n".join(lines)


def main() -> None:
    defaults = Workload()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Workload):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=float, default=getattr(defaults, f.name))
    parser.add_argument("--scale", type=float, action="append", help="also the workload times this (repeatable)")
    parser.add_argument("--check", action="store_true", help="exit 1 if deploy/k8s allows fewer pods than needed")
    args = parser.parse_args()
    workload = Workload(**{f.name: getattr(args, f.name) for f in fields(Workload)})
    for factor in [1.0, *(args.scale or [])]:
        print(report(workload.scaled(factor), factor))
    problems = shortfalls(workload)
    for problem in problems:
        print("short:", problem)
    if args.check and problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
