"""What the deployment files in ``deploy/`` pass to offhours, read as the tools read them.

Shared by the deployment-file checks (``tests/deploy/test_deploy_files.py``) and the
Apache Kafka cluster rounds (``tests/integration/offhours/test_kafka_cluster.py``),
which run their workers with the settings a deployment passes, so that a change to
``deploy/`` changes what those rounds prove, and a test's own setting cannot hide a
difference (:data:`PER_RUN` lists the only settings a round sets itself).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
OFFHOURS_ENV_EXAMPLE = DEPLOY / "env" / "offhours.env.example"
KUSTOMIZE = DEPLOY / "kubernetes"
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")

IDEMPOTENT_FLAG = "--idempotent-producer"
"""The ``offhours run`` option that makes the webhooks' producer idempotent."""

PIPELINE = (
    "partitions", "replication", "store", "session_timeout", "reconcile_interval",
    "watchdog_after", "sweep_interval", "retention", "broker_flavour", "one_record_batches",
)
"""The settings that shape how the workers use Kafka: taken from the deployment as is."""

PER_RUN = ("broker_url", "app_id", "data_dir", "coverage_file", "responders", "ops")
"""What a test round sets itself (and the topic names): where, under which names, with which coverage."""


def load_compose() -> dict[str, Any]:
    """The compose file as compose sees it before interpolation (merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str) -> str:
    """``${VAR:-default}`` replaced by its default, as on a host that sets nothing."""
    return INTERPOLATION.sub(lambda match: match.group("default") or "", value)


def offhours_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the offhours image (``offhours`` entrypoint)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "offhours" in interpolate(service.get("image", "")).split("/")[-1]
    }


def read_env_file(path: Path) -> dict[str, str]:
    """A compose-style env file: ``NAME=value`` lines, ``#`` comments, no quoting."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def resource_documents(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in the resource files a kustomization lists itself."""
    for entry in kustomization(directory).get("resources", []):
        path = directory / entry
        if path.is_dir():
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield f"{directory.name}/{entry}", document


def base_objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for _, doc in resource_documents(KUSTOMIZE / "base")
    }


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    for (kind, name), doc in base_objects().items():
        if kind in {"Deployment", "StatefulSet"}:
            yield name, doc["spec"]["template"]


@dataclass(frozen=True)
class Deployed:
    """One offhours workload as a deployment runs it: its environment and its arguments."""

    where: str
    env: dict[str, str]
    args: tuple[str, ...]

    @property
    def idempotent(self) -> bool:
        return IDEMPOTENT_FLAG in self.args

    def settings(self) -> Settings:
        """The Settings this environment gives ``offhours``, and nothing from the test's own."""
        with _environment(self.env):
            return Settings()

    def pipeline(self) -> dict[str, object]:
        """The :data:`PIPELINE` settings of this workload."""
        settings = self.settings()
        return {name: getattr(settings, name) for name in PIPELINE}


def compose_worker() -> Deployed:
    """``worker-1`` of the compose file: the example env file (copied to env/offhours.env) and its own."""
    service = offhours_services(load_compose())["worker-1"]
    env = read_env_file(OFFHOURS_ENV_EXAMPLE) | {k: str(v) for k, v in (service.get("environment") or {}).items()}
    return Deployed("compose worker-1", env, tuple(service["command"]))


def kubernetes_worker() -> Deployed:
    """The base's worker StatefulSet: the settings ConfigMap and the container's own env."""
    objects = base_objects()
    env = dict(objects[("ConfigMap", "offhours-settings")]["data"])
    container = objects[("StatefulSet", "offhours-worker")]["spec"]["template"]["spec"]["containers"][0]
    env |= {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    return Deployed("kubernetes worker", env, tuple(container["args"]))


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` holding exactly ``env`` for the OFFHOURS_* names, restored afterwards."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("OFFHOURS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(env)
    try:
        yield
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)
