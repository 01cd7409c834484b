"""Static checks of the container and Kubernetes deployment (no Docker engine or cluster needed).

They hold docker-compose.yml, the Dockerfile and deploy/k8s to the contract the services rely on:
every LOUPE_* name is a real setting (the settings loader refuses unknown ones), every image is
pinned, every service is probed and waits for healthy infrastructure, the kustomize base lists
exactly the manifests that exist, the autoscalers watch exactly the consumers the code creates, and
each service's extra holds only what the service imports.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import msgspec
import pytest
import yaml

from shared.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"

SERVICES = ("gateway", "catalog", "annotation", "ingest", "training", "inference")
INFRA = ("nats", "postgres", "minio", "triton")
# Scaled by KEDA on JetStream consumer lag; the gateway is scaled on CPU by an HPA.
WORKERS = ("catalog", "annotation", "ingest", "training", "inference")

SETTING_NAMES = frozenset(env_name(f.name) for f in msgspec.structs.fields(Settings))
# What every service needs, plus what some need on top.
REQUIRED_ENV = {
    "LOUPE_NATS_URL",
    "LOUPE_DATABASE_URL",
    "LOUPE_S3_ENDPOINT",
    "LOUPE_S3_ACCESS_KEY",
    "LOUPE_S3_SECRET_KEY",
    "LOUPE_HTTP_HOST",
    "LOUPE_HTTP_PORT",
}
EXTRA_ENV = {
    "gateway": {"LOUPE_PUBLIC_URL", "LOUPE_S3_PUBLIC_ENDPOINT"},
    "catalog": {"LOUPE_BOOTSTRAP_ADMIN_KEY", "LOUPE_S3_PUBLIC_ENDPOINT"},
    "annotation": {"LOUPE_S3_PUBLIC_ENDPOINT"},
    "ingest": {"LOUPE_S3_PUBLIC_ENDPOINT"},
    "training": set(),
    "inference": {"LOUPE_TRITON_URL"},
}
SECRET_ENV = {"LOUPE_DATABASE_URL", "LOUPE_S3_ACCESS_KEY", "LOUPE_S3_SECRET_KEY", "LOUPE_BOOTSTRAP_ADMIN_KEY"}
# JetStream stream names: they look like variables but are not.
STREAMS = {"LOUPE_JOBS", "LOUPE_EVENTS"}
LOUPE_NAME = re.compile(r"\bLOUPE_[A-Z0-9_]+\b")


def required_env(service: str) -> set[str]:
    return REQUIRED_ENV | EXTRA_ENV[service]


def assert_pinned(image: str) -> None:
    """A tag that names a release (not `latest`, not a bare distro name), or a digest."""
    assert image and "${" not in image, f"image {image!r} is not a literal reference"
    ref, _, digest = image.partition("@")
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"bad digest in {image!r}"
        return
    _, colon, tag = ref.rpartition(":")
    assert colon and tag and "/" not in tag, f"image {image!r} has no tag"
    assert tag != "latest" and re.search(r"\d", tag), f"image {image!r} is not pinned to a release"


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# ------------------------------------------------------------------ docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_and_infra(compose):
    assert set(SERVICES + INFRA) <= set(compose["services"])


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_runs_its_module_with_its_settings(compose, service):
    spec = compose["services"][service]
    command = spec["command"]
    if isinstance(command, str):
        command = command.split()
    assert command == ["python", "-m", f"services.{service}"]
    env = spec["environment"]
    assert isinstance(env, dict), "environment must be a mapping"
    missing = required_env(service) - set(env)
    assert not missing, f"{service} lacks {sorted(missing)}"
    unknown = {name for name in env if name.startswith("LOUPE_")} - SETTING_NAMES
    assert not unknown, f"{service} sets {sorted(unknown)}, which are not settings"
    assert env["LOUPE_HTTP_HOST"] == "0.0.0.0"
    assert str(env["LOUPE_HTTP_PORT"]) == "8080"
    assert spec["build"]["args"]["EXTRAS"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_waits_for_healthy_infra(compose, service):
    depends = compose["services"][service]["depends_on"]
    needed = {"nats", "postgres", "minio"} | ({"triton"} if service == "inference" else set())
    for name in needed:
        assert depends[name]["condition"] == "service_healthy", f"{service} -> {name}"


def test_compose_images_are_pinned(compose):
    for name, spec in compose["services"].items():
        assert "image" in spec, f"{name} has no image"
        assert_pinned(spec["image"])


def test_compose_long_running_containers_have_healthchecks(compose):
    for name, spec in compose["services"].items():
        if spec.get("restart") == "no":  # one-shot init containers
            continue
        assert spec.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_triton_waits_for_its_models_bucket(compose):
    triton = compose["services"]["triton"]
    depends = triton["depends_on"]
    init = [n for n, d in depends.items() if d["condition"] == "service_completed_successfully"]
    assert init, "triton must wait for the one-shot that creates the models bucket"
    init_spec = compose["services"][init[0]]
    assert "mc mb" in " ".join(init_spec["command"]) and "models" in str(init_spec["environment"])
    command = " ".join(triton["command"])
    assert "--model-repository=s3://minio:9000/" in command
    assert "--model-control-mode=explicit" in command
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(triton["environment"])


def test_compose_nats_has_jetstream_and_postgres_has_extensions(compose):
    assert "-js" in compose["services"]["nats"]["command"]
    mounts = compose["services"]["postgres"]["volumes"]
    init = [m for m in mounts if "docker-entrypoint-initdb.d" in m]
    assert init
    sql = (ROOT / init[0].split(":")[0]).read_text().lower()
    assert "create extension if not exists vector" in sql
    assert "create extension if not exists pg_trgm" in sql


def test_compose_variables_are_settings():
    """`${LOUPE_X}` read from the user's shell must be real settings: the loader refuses others."""
    for path in (ROOT / "docker-compose.yml", ROOT / "deploy" / "compose.gpu.yml"):
        names = set(LOUPE_NAME.findall(path.read_text())) - STREAMS
        assert names <= SETTING_NAMES, f"{path.name}: {sorted(names - SETTING_NAMES)}"


def test_compose_gpu_override_parses():
    override = yaml.safe_load((ROOT / "deploy" / "compose.gpu.yml").read_text())
    devices = override["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"


# ------------------------------------------------------------------ Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_base_images_are_pinned_python_311_slim():
    froms = [rest.split()[0] for word, rest in dockerfile_instructions() if word == "FROM"]
    assert froms
    for image in froms:
        assert_pinned(image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image


def test_dockerfile_installs_the_project_with_selected_extras():
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    extras = set(args["EXTRAS"].split(","))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    optional = set(pyproject["project"]["optional-dependencies"])
    assert extras == set(SERVICES), "default EXTRAS: every service extra, not local/all/dev"
    assert extras <= optional
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert '".[${EXTRAS}]"' in runs


def imported_modules(folder: Path) -> set[str]:
    """The top-level modules the code under `folder` imports."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_extra_holds_only_what_the_service_imports(service):
    """An extra is what its image installs: a package there that nothing imports (torch before training
    used it) only makes the image bigger."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    modules_of: dict[str, set[str]] = {}
    for module, distributions in packages_distributions().items():
        for distribution in distributions:
            modules_of.setdefault(re.sub(r"[-_.]+", "-", distribution).lower(), set()).add(module)
    imported = imported_modules(ROOT / "services" / service)
    for requirement in extras[service]:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)).lower()
        assert modules_of.get(name, set()) & imported, (
            f"the {service} extra installs {requirement}, which services/{service} never imports: drop it")


def test_dockerfile_runs_as_non_root_on_8080():
    instructions = dockerfile_instructions()
    users = [rest for word, rest in instructions if word == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    assert "LOUPE_HTTP_HOST=0.0.0.0" in env and "LOUPE_HTTP_PORT=8080" in env
    assert ("EXPOSE", "8080") in instructions


def test_dockerignore_keeps_the_sources():
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv"} <= ignored
    assert not ignored & {"pyproject.toml", "shared", "services", "proto", "loupe", "README.md"}


# ------------------------------------------------------------------ deploy/k8s


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return {p.name: load_all(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"}


@pytest.fixture(scope="module")
def objects(manifests) -> dict[tuple[str, str], dict]:
    found = {}
    for docs in manifests.values():
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"duplicate {key}"
            found[key] = doc
    return found


@pytest.fixture(scope="module")
def config(objects) -> dict[str, str]:
    return objects[("ConfigMap", "loupe-config")]["data"]


def test_every_yaml_under_deploy_parses():
    for path in sorted((ROOT / "deploy").rglob("*.y*ml")):
        for doc in load_all(path):
            assert isinstance(doc, dict), path


def test_kustomization_lists_exactly_the_manifests():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists missing {name}"
    on_disk = {p.name for p in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk, f"not listed: {sorted(on_disk - set(listed))}"


def pod_specs(objects):
    for (kind, name), doc in objects.items():
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield name, doc["spec"]["template"]["spec"]


def test_k8s_images_are_pinned(objects):
    images = []
    for _, spec in pod_specs(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            images.append(container["image"])
    images += [doc["spec"]["imageName"] for (kind, _), doc in objects.items() if kind == "Cluster"]
    assert images
    for image in images:
        assert_pinned(image)


def test_configmap_names_are_settings_and_hold_no_secrets(config):
    names = set(config)
    assert names <= SETTING_NAMES, f"not settings: {sorted(names - SETTING_NAMES)}"
    assert not names & SECRET_ENV, "secrets belong in a Secret"
    assert config["LOUPE_HTTP_HOST"] == "0.0.0.0" and config["LOUPE_HTTP_PORT"] == "8080"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"


def test_k8s_loupe_names_are_settings():
    for path in sorted(K8S.glob("*.yaml")):
        names = set(LOUPE_NAME.findall(path.read_text())) - STREAMS
        assert names <= SETTING_NAMES, f"{path.name}: {sorted(names - SETTING_NAMES)}"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_deployment(objects, config, service):
    deployment = objects[("Deployment", service)]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert container["image"].split(":")[0] == f"loupe/{service}"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" + ("?scope=self" if service == "gateway" else "")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8080
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8080)

    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]

    # Environment: the ConfigMap, plus secrets by reference.
    assert {"configMapRef": {"name": "loupe-config"}} in container["envFrom"]
    env = {e["name"]: e for e in container.get("env", [])}
    available = set(config) | set(env)
    missing = required_env(service) - available
    assert not missing, f"{service} lacks {sorted(missing)}"
    assert set(env) <= SETTING_NAMES
    for name in SECRET_ENV & set(env):
        assert "secretKeyRef" in env[name]["valueFrom"], f"{name} must come from a Secret"

    # Non-root, and no injected <SVC>_SERVICE_HOST names (LOUPE_* ones would be refused).
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["enableServiceLinks"] is False

    # Stopping pods get a little more than the process's own grace period.
    grace = float(config.get("LOUPE_SHUTDOWN_GRACE_S", Settings().shutdown_grace_s))
    assert grace < spec["terminationGracePeriodSeconds"] <= grace + 30

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"

    selector = deployment["spec"]["selector"]["matchLabels"]
    service_obj = objects[("Service", service)]
    assert service_obj["spec"]["selector"] == selector
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()


@pytest.mark.parametrize("service", WORKERS)
def test_k8s_workers_scale_on_consumer_lag_and_cpu(objects, service):
    scaled = objects[("ScaledObject", service)]["spec"]
    assert scaled["scaleTargetRef"]["name"] == service
    assert scaled["minReplicaCount"] >= 1, "services answer bus requests: never scale to zero"
    # Bus requests leave no lag behind, so every worker also scales on CPU.
    assert any(t["type"] == "cpu" for t in scaled["triggers"])
    for trigger in scaled["triggers"]:
        if trigger["type"] == "nats-jetstream":
            meta = trigger["metadata"]
            assert meta["natsServerMonitoringEndpoint"].endswith(":8222")
            assert int(meta["lagThreshold"]) >= 1


def created_consumers(service: str) -> dict[str, str]:
    """The durable consumers `services.<service>` creates on start, and the stream of each."""
    declared = importlib.import_module(f"services.{service}.service").service
    return {spec.durable: spec.stream for spec in declared.consumers()}


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_scaled_consumers_are_the_ones_the_code_creates(objects, service):
    """KEDA watches exactly the durables the service creates, on their streams: one it never creates
    makes the scaler fail, and one not watched never scales its service."""
    created = created_consumers(service)
    scaled = objects.get(("ScaledObject", service))
    watched = {} if scaled is None else {t["metadata"]["consumer"]: t["metadata"]["stream"]
                                          for t in scaled["spec"]["triggers"] if t["type"] == "nats-jetstream"}
    assert not watched.keys() - created.keys(), (
        f"deploy/k8s/keda.yaml watches {sorted(watched.keys() - created.keys())}, which {service} never creates")
    assert not created.keys() - watched.keys(), (
        f"add triggers for {sorted(created.keys() - watched.keys())} to deploy/k8s/keda.yaml")
    assert watched == created, "a trigger names the wrong stream for its consumer"


def named_consumers(node: object) -> set[str]:
    """Every value of a `consumer` key, however deep in a manifest."""
    if isinstance(node, dict):
        return {v for k, v in node.items() if k == "consumer"} | set().union(*map(named_consumers, node.values()))
    if isinstance(node, list):
        return set().union(*map(named_consumers, node))
    return set()


def test_every_consumer_a_manifest_names_is_created_by_the_code(manifests):
    created = set().union(*(created_consumers(service) for service in SERVICES))
    for name, docs in manifests.items():
        unknown = named_consumers(docs) - created
        assert not unknown, f"deploy/k8s/{name} names consumers {sorted(unknown)}, which no service creates"


def test_k8s_gateway_scales_on_cpu_and_keeps_one_up(objects):
    assert ("ScaledObject", "gateway") not in objects
    hpa = objects[("HorizontalPodAutoscaler", "gateway")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert any(m["resource"]["name"] == "cpu" for m in hpa["metrics"] if m["type"] == "Resource")
    pdb = objects[("PodDisruptionBudget", "gateway")]["spec"]
    selector = objects[("Deployment", "gateway")]["spec"]["selector"]["matchLabels"]
    assert pdb["selector"]["matchLabels"] == selector
    assert pdb["minAvailable"] < hpa["minReplicas"]


def test_k8s_ingress_routes_to_the_gateway(objects):
    backends = []
    for (kind, _), doc in objects.items():
        if kind == "Ingress":
            for rule in doc["spec"]["rules"]:
                backends += [p["backend"]["service"]["name"] for p in rule["http"]["paths"]]
    assert "gateway" in backends


def test_k8s_triton_on_gpu_with_s3_repository(objects):
    deployment = objects[("Deployment", "triton")]
    spec = deployment["spec"]["template"]["spec"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["nodeSelector"]
    (container,) = spec["containers"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    args = " ".join(container["command"] + container["args"])
    assert "--model-repository=s3://" in args and "--model-control-mode=explicit" in args
    assert "mc" in " ".join(spec["initContainers"][0]["args"]), "models bucket must exist first"
    env = {e["name"] for e in container["env"]}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env
    ports = {p["containerPort"] for p in container["ports"]}
    assert 8000 in ports
    assert objects[("Service", "triton")]


def test_k8s_config_points_at_the_in_cluster_services(objects, config):
    assert config["LOUPE_TRITON_URL"].split(":") == ["triton", "8000"]
    assert config["LOUPE_NATS_URL"].startswith("nats://")


def test_k8s_postgres_cluster_bootstraps_extensions(objects, config):
    cluster = objects[("Cluster", "postgres")]["spec"]
    sql = " ".join(cluster["bootstrap"]["initdb"]["postInitApplicationSQL"]).lower()
    assert "extension if not exists vector" in sql and "extension if not exists pg_trgm" in sql
    assert cluster["bootstrap"]["initdb"]["database"] == "loupe"
    # Deployments read the DSN from the operator's <cluster>-app secret.
    for service in SERVICES:
        (container,) = objects[("Deployment", service)]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["LOUPE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "postgres-app"
    # Every pod at its maximum scale, each with a full pool, still fits.
    pool = int(config.get("LOUPE_DB_POOL_MAX", Settings().db_pool_max))
    replicas = objects[("HorizontalPodAutoscaler", "gateway")]["spec"]["maxReplicas"]
    replicas += sum(objects[("ScaledObject", s)]["spec"]["maxReplicaCount"] for s in WORKERS)
    assert replicas * pool < int(cluster["postgresql"]["parameters"]["max_connections"])
