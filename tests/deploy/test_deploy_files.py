"""The deployment files, checked without Docker or a cluster.

Compose against the Compose Specification's JSON schema (vendored beside this file;
its source is in README.md there), Kubernetes manifests against the API schemas
shipped by ``kubernetes-validate``, the topic script run for real against a recording
stand-in of ``kafka-topics.sh``, the image's health check run for real against a
local server, and every ``OFFHOURS_*`` variable the files pass checked against the
one Settings object.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel

from streams.settings import Settings
from tests.support.deployed import (
    COMPOSE_FILE,
    DEPLOY,
    IDEMPOTENT_FLAG,
    KUSTOMIZE,
    PIPELINE,
    base_objects,
    compose_worker,
    interpolate,
    kubernetes_worker,
    kustomization,
    load_compose,
    offhours_services,
    pod_templates,
    read_env_file,
    resource_documents,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_SCHEMA = HERE / "compose-spec.schema.json"
DOCKERFILE = DEPLOY / "Dockerfile"
TOPIC_SCRIPT = DEPLOY / "kafka" / "create-topics.sh"
ENV_EXAMPLES = (DEPLOY / "env" / "offhours.env.example", DEPLOY / "env" / "secrets.env.example")
KUSTOMIZATIONS = (KUSTOMIZE / "base", KUSTOMIZE / "overlays" / "production")
K8S_VERSION = kubernetes_validate.utils.latest_version()
ENV_NAME = re.compile(r"\bOFFHOURS_[A-Z0-9_]+\b")


# --- helpers ---------------------------------------------------------------------------


def render(directory: Path) -> list[dict[str, Any]]:
    """What ``kubectl apply -k`` would send: kustomize as built into kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the per-file schema checks still ran")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert "" == result.stderr.strip()
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs with line continuations joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _candidates(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of ``X | None`` / ``Optional[X]``, or the annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return (annotation,)


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _resolves(annotation: Any, parts: list[str]) -> bool:
    """True when ``parts`` (the rest of an env name split at ``__``) address a setting."""
    if not parts:
        return True
    for candidate in _candidates(annotation):
        model = _model(candidate)
        if model is not None:
            field = model.model_fields.get(parts[0].lower())
            if field is not None and _resolves(field.annotation, parts[1:]):
                return True
        elif typing.get_origin(candidate) is dict:
            # A dict setting takes any key; what follows the key addresses the value.
            _, value_type = typing.get_args(candidate)
            if _resolves(value_type, parts[1:]):
                return True
    return False


def names_a_setting(env_name: str) -> bool:
    """True when pydantic-settings maps ``env_name`` onto a field of Settings."""
    prefix = Settings.model_config["env_prefix"]
    delimiter = Settings.model_config["env_nested_delimiter"]
    if not env_name.startswith(prefix):
        return False
    return _resolves(Settings, env_name[len(prefix) :].split(delimiter))


def settings_env_names(model: type[BaseModel] = Settings, prefix: str = "OFFHOURS_") -> list[str]:
    """Every variable an operator can set: nested models expanded, dicts as one JSON value."""
    names = []
    for name, field in model.model_fields.items():
        nested = next(filter(None, map(_model, _candidates(field.annotation))), None)
        if nested is not None:
            names += settings_env_names(nested, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def passed_env_names() -> list[tuple[str, str]]:
    """``(file, name)`` for every OFFHOURS_* variable a deployment file sets or reads."""
    sources = [COMPOSE_FILE, DOCKERFILE, TOPIC_SCRIPT, *ENV_EXAMPLES]
    for directory in KUSTOMIZATIONS:
        sources += sorted(directory.glob("*.yaml"))
    found = []
    for path in sources:
        for name in sorted(set(ENV_NAME.findall(path.read_text()))):
            found.append((str(path.relative_to(DEPLOY)), name))
    return found


# --- Compose ---------------------------------------------------------------------------


class TestComposeFile:
    """deploy/compose.yaml: Apache Kafka in KRaft mode, topic job, three workers, one API."""

    def test_matches_the_compose_specification(self) -> None:
        """The file is valid against the Compose Specification's JSON schema."""
        schema = json.loads(COMPOSE_SCHEMA.read_text())
        validator_class = jsonschema.validators.validator_for(schema)
        validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
        problems = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(load_compose())
        ]
        assert [] == problems

    def test_kafka_runs_in_kraft_mode_from_the_official_image(self) -> None:
        """One node is both controller and broker, with the settings KRaft needs."""
        kafka = load_compose()["services"]["kafka"]
        environment = kafka["environment"]
        expected = {
            "image": "apache/kafka",
            "roles": {"broker", "controller"},
            "voters": f"{environment['KAFKA_NODE_ID']}@kafka:9093",
            "controller_listener_declared": True,
            "cluster_id_length": 22,
        }
        actual = {
            "image": interpolate(kafka["image"]).split(":")[0],
            "roles": set(environment["KAFKA_PROCESS_ROLES"].split(",")),
            "voters": environment["KAFKA_CONTROLLER_QUORUM_VOTERS"],
            "controller_listener_declared": "CONTROLLER://"
            in environment["KAFKA_LISTENERS"],
            "cluster_id_length": len(environment["CLUSTER_ID"]),
        }
        assert expected == actual

    def test_runs_three_workers_and_one_api(self) -> None:
        """Three worker services with their own state volume; only the API publishes a port."""
        services = offhours_services(load_compose())
        workers = sorted(name for name, service in services.items() if "ports" not in service)
        published = sorted(name for name, service in services.items() if "ports" in service)
        state_volumes = {
            name: [
                volume for volume in services[name]["volumes"]
                if isinstance(volume, str) and volume.endswith(":/var/lib/offhours")
            ]
            for name in workers
        }
        assert (["worker-1", "worker-2", "worker-3"], ["api"]) == (workers, published)
        assert {name: [f"{name}-data:/var/lib/offhours"] for name in workers} == state_volumes
        assert ["${API_PORT:-8080}:8080"] == services["api"]["ports"]

    def test_start_order_waits_for_health_and_topics(self) -> None:
        """Topics wait for a healthy broker; every offhours service waits for the topics."""
        compose = load_compose()
        expected = {"kafka-init": {"kafka": {"condition": "service_healthy"}}}
        expected |= {
            name: {"kafka-init": {"condition": "service_completed_successfully"}}
            for name in offhours_services(compose)
        }
        actual = {
            name: service["depends_on"]
            for name, service in compose["services"].items()
            if "depends_on" in service
        }
        assert expected == actual

    def test_long_running_services_have_health_checks(self) -> None:
        """Kafka, the workers and the API each declare a health check."""
        compose = load_compose()
        long_running = [name for name, svc in compose["services"].items() if svc.get("restart") != "no"]
        assert [] == [name for name in long_running if "healthcheck" not in compose["services"][name]]
        assert ["kafka", "worker-1", "worker-2", "worker-3", "api"] == long_running

    def test_coverage_file_is_mounted_read_only(self) -> None:
        """Every offhours service reads the host's coverage file, read-only, where settings say."""
        compose = load_compose()
        coverage_path = read_env_file(ENV_EXAMPLES[0])["OFFHOURS_COVERAGE_FILE"]
        mounts = {
            name: [
                (interpolate(volume["source"]), volume["read_only"])
                for volume in service["volumes"]
                if isinstance(volume, dict) and volume["target"] == coverage_path
            ]
            for name, service in offhours_services(compose).items()
        }
        expected = {name: [("../examples/coverage.yaml", True)] for name in mounts}
        assert expected == mounts
        assert (DEPLOY / "../examples/coverage.yaml").is_file()

    def test_bind_sources_and_env_files_exist(self) -> None:
        """Bind-mounted files exist; each env file is shipped as a `.example` to copy."""
        compose = load_compose()
        missing = []
        for name, service in compose["services"].items():
            for volume in service.get("volumes", []):
                if isinstance(volume, dict) and volume["type"] == "bind":
                    if not (DEPLOY / interpolate(volume["source"])).exists():
                        missing.append(f"{name}: {volume['source']}")
            for env_file in service.get("env_file", []):
                if not (DEPLOY / f"{env_file}.example").is_file():
                    missing.append(f"{name}: {env_file}.example")
        assert [] == missing

    def test_real_env_files_are_not_versioned(self) -> None:
        """The copied env files (real secrets) are ignored by git; the examples are not."""
        result = subprocess.run(
            ["git", "check-ignore", "--no-index", "deploy/env/secrets.env",
             "deploy/env/offhours.env", "deploy/env/secrets.env.example"],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )
        assert ["deploy/env/secrets.env", "deploy/env/offhours.env"] == result.stdout.split()


# --- Topic initialisation --------------------------------------------------------------


RECORDER = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$TOPICS_LOG"
"""


def run_topic_script(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    recorder = tmp_path / "kafka-topics.sh"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    full_env = {"PATH": os.environ["PATH"], "KAFKA_TOPICS_CLI": str(recorder),
                "TOPICS_LOG": str(tmp_path / "calls.log"), **env}
    return subprocess.run(
        ["bash", str(TOPIC_SCRIPT)], env=full_env, capture_output=True, text=True, timeout=30
    )


def recorded_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "calls.log"
    return [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


class TestTopicScript:
    """deploy/kafka/create-topics.sh: every topic, from the same OFFHOURS_* variables."""

    def test_creates_every_topic_of_the_settings(self, tmp_path: Path) -> None:
        """With the example env file: each *_topic setting, its partitions and replication."""
        env = read_env_file(ENV_EXAMPLES[0])
        result = run_topic_script(tmp_path, env)
        assert 0 == result.returncode, result.stderr
        sizing = (env["OFFHOURS_PARTITIONS"], env["OFFHOURS_REPLICATION"])
        expected = {
            env.get(f"OFFHOURS_{name.upper()}", field.default): sizing
            for name, field in Settings.model_fields.items()
            if name.endswith("_topic")
        }
        actual = {
            option(call, "--topic"): (option(call, "--partitions"), option(call, "--replication-factor"))
            for call in recorded_calls(tmp_path)
        }
        assert expected == actual

    def test_only_the_config_topic_is_compacted(self, tmp_path: Path) -> None:
        """The config topic gets cleanup.policy=compact; the others keep Kafka's retention."""
        run_topic_script(tmp_path, {"OFFHOURS_BROKER_URL": "kafka://kafka:9092"})
        compacted = {
            option(call, "--topic")
            for call in recorded_calls(tmp_path)
            if "--config" in call and option(call, "--config") == "cleanup.policy=compact"
        }
        assert {Settings.model_fields["config_topic"].default} == compacted

    def test_creation_is_idempotent(self, tmp_path: Path) -> None:
        """Every create asks --if-not-exists, so the job can run on every start."""
        run_topic_script(tmp_path, {"OFFHOURS_BROKER_URL": "kafka://kafka:9092"})
        calls = recorded_calls(tmp_path)
        assert len(calls) == sum(1 for call in calls if "--create" in call and "--if-not-exists" in call)
        assert len([name for name in Settings.model_fields if name.endswith("_topic")]) == len(calls)

    @pytest.mark.parametrize(
        ("broker_url", "bootstrap"),
        [
            pytest.param("kafka://kafka:9092", "kafka:9092", id="one_broker"),
            pytest.param("kafka://a:9092,kafka://b:9093", "a:9092,b:9093", id="broker_list"),
            pytest.param("kafka:9092", "kafka:9092", id="no_scheme"),
            pytest.param("kafka://a:9092/", "a:9092", id="trailing_slash"),
        ],
    )
    def test_bootstrap_comes_from_the_broker_url(
        self, tmp_path: Path, broker_url: str, bootstrap: str
    ) -> None:
        """kafka-topics.sh gets the hosts of OFFHOURS_BROKER_URL, as Settings reads them."""
        run_topic_script(tmp_path, {"OFFHOURS_BROKER_URL": broker_url})
        settings = Settings.model_validate({"broker_url": broker_url})
        assert {bootstrap} == {option(call, "--bootstrap-server") for call in recorded_calls(tmp_path)}
        assert bootstrap == ",".join(settings.bootstrap_servers)

    def test_refuses_to_run_without_a_broker(self, tmp_path: Path) -> None:
        """Without OFFHOURS_BROKER_URL it fails, says what to set, and creates nothing."""
        result = run_topic_script(tmp_path, {})
        assert (True, True, []) == (
            result.returncode != 0, "OFFHOURS_BROKER_URL" in result.stderr, recorded_calls(tmp_path)
        )

    def test_defaults_are_the_settings_defaults(self) -> None:
        """Each ${OFFHOURS_X:-default} in the script equals the Settings default of X."""
        found = dict(re.findall(r"\$\{OFFHOURS_(\w+):-([^}]*)\}", TOPIC_SCRIPT.read_text()))
        expected = {name: str(Settings.model_fields[name.lower()].default) for name in found}
        assert expected == found
        topics = [name for name in Settings.model_fields if name.endswith("_topic")]
        assert len(topics) + 2 == len(found)  # every topic, its partitions and its replication


# --- Kubernetes ------------------------------------------------------------------------


SCHEMA_CASES = [
    pytest.param(doc, id=f"{source}:{doc['kind']}/{doc['metadata']['name']}")
    for directory in KUSTOMIZATIONS
    for source, doc in resource_documents(directory)
]


class TestKubernetesManifests:
    """deploy/kubernetes: Kustomize base and production overlay."""

    @pytest.mark.parametrize("document", SCHEMA_CASES)
    def test_resource_file_matches_its_api_schema(self, document: dict[str, Any]) -> None:
        """Each object a kustomization lists is valid for its kind (strict: no unknown keys)."""
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)

    @pytest.mark.parametrize(
        "directory", [pytest.param(path, id=path.name) for path in KUSTOMIZATIONS]
    )
    def test_rendered_kustomization_matches_the_api_schemas(self, directory: Path) -> None:
        """What `kubectl apply -k` sends, patches and generators applied, is valid."""
        for document in render(directory):
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)

    def test_production_drops_the_example_secret(self) -> None:
        """The overlay deletes the placeholder Secret and renders everything in its namespace."""
        documents = render(KUSTOMIZATIONS[1])
        kinds = sorted({doc["kind"] for doc in documents})
        namespaces = {doc["metadata"].get("namespace") for doc in documents if doc["kind"] != "Namespace"}
        assert "Secret" not in kinds
        assert {"offhours"} == namespaces

    def test_patches_target_base_objects(self) -> None:
        """Every patch and replica count of the overlay names an object of the base."""
        overlay = kustomization(KUSTOMIZATIONS[1])
        objects = base_objects()
        names = {name for _, name in objects}
        targets = []
        for patch in overlay["patches"]:
            doc = yaml.safe_load((KUSTOMIZATIONS[1] / patch["path"]).read_text())
            targets.append((doc["kind"], doc["metadata"]["name"]))
        assert [] == [target for target in targets if target not in objects]
        assert [] == [entry["name"] for entry in overlay["replicas"] if entry["name"] not in names]

    def test_workers_keep_rocksdb_state_on_a_claim(self) -> None:
        """The worker StatefulSet uses RocksDB in a volumeClaimTemplate mounted at the data dir."""
        worker = base_objects()[("StatefulSet", "offhours-worker")]
        container = worker["spec"]["template"]["spec"]["containers"][0]
        data_dir = base_objects()[("ConfigMap", "offhours-settings")]["data"]["OFFHOURS_DATA_DIR"]
        claims = [claim["metadata"]["name"] for claim in worker["spec"]["volumeClaimTemplates"]]
        mounted = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        env = {item["name"]: item["value"] for item in container["env"]}
        assert ("rocksdb://", ["data"], "data") == (
            env["OFFHOURS_STORE"], claims, mounted[data_dir]
        )

    def test_api_is_stateless_and_replicated(self) -> None:
        """The API Deployment runs at least two replicas on the memory store."""
        api = base_objects()[("Deployment", "offhours-api")]
        container = api["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item["value"] for item in container["env"]}
        assert (True, "memory://") == (api["spec"]["replicas"] >= 2, env["OFFHOURS_STORE"])

    def test_probes_resources_and_non_root(self) -> None:
        """Every container: /readyz and /healthz probes, requests and limits, non-root."""
        uid = int(dict(dockerfile_instructions())["USER"].split(":")[0])
        expected, actual = {}, {}
        for name, template in pod_templates():
            pod = template["spec"]
            for container in pod["containers"]:
                key = f"{name}/{container['name']}"
                expected[key] = ("/readyz", "/healthz", True, True, uid, False, ["ALL"])
                actual[key] = (
                    container["readinessProbe"]["httpGet"]["path"],
                    container["livenessProbe"]["httpGet"]["path"],
                    {"cpu", "memory"} <= set(container["resources"]["requests"]),
                    {"cpu", "memory"} <= set(container["resources"]["limits"]),
                    pod["securityContext"]["runAsUser"] if pod["securityContext"]["runAsNonRoot"] else 0,
                    container["securityContext"]["allowPrivilegeEscalation"],
                    container["securityContext"]["capabilities"]["drop"],
                )
        assert ["offhours-api/api", "offhours-worker/worker"] == sorted(actual)
        assert expected == actual

    def test_every_workload_has_a_disruption_budget_and_a_service(self) -> None:
        """A PodDisruptionBudget and a Service select the pods of each workload."""
        objects = base_objects()
        selectors = {
            kind: sorted(
                json.dumps(doc["spec"]["selector"].get("matchLabels", doc["spec"]["selector"]), sort_keys=True)
                for (k, _), doc in objects.items() if k == kind
            )
            for kind in ("PodDisruptionBudget", "Service")
        }
        workloads = sorted(json.dumps(template["metadata"]["labels"], sort_keys=True) for _, template in pod_templates())
        assert {"PodDisruptionBudget": workloads, "Service": workloads} == selectors

    def test_coverage_configmap_is_the_example_file(self) -> None:
        """The base's generated coverage ConfigMap holds examples/coverage.yaml unchanged."""
        assert (ROOT / "examples" / "coverage.yaml").read_text() == (
            KUSTOMIZE / "base" / "coverage.yaml"
        ).read_text()

    def test_example_secret_holds_only_placeholders(self) -> None:
        """Every value of the example Secret (and secrets.env.example) says change-me."""
        secret = base_objects()[("Secret", "offhours-secrets")]["stringData"]
        env_example = read_env_file(ENV_EXAMPLES[1])
        assert [] == [name for name, value in secret.items() if "change-me" not in value]
        assert [] == [name for name, value in env_example.items() if "change-me" not in value]
        assert sorted(env_example) == sorted(secret)


# --- Settings variables ----------------------------------------------------------------


class TestSettingsVariables:
    """Every OFFHOURS_* variable the deployment passes is a real setting, and documented."""

    @pytest.mark.parametrize(
        "name", [pytest.param(name, id=f"{source}:{name}") for source, name in passed_env_names()]
    )
    def test_variable_names_a_setting(self, name: str) -> None:
        """pydantic-settings maps the variable onto a field of Settings (nested with __)."""
        assert names_a_setting(name), f"{name} is not a field of streams.settings.Settings"

    @pytest.mark.parametrize(
        "environment",
        [
            pytest.param(
                lambda: {k: v for path in ENV_EXAMPLES for k, v in read_env_file(path).items()},
                id="compose_env_examples",
            ),
            pytest.param(
                lambda: {
                    **base_objects()[("ConfigMap", "offhours-settings")]["data"],
                    **base_objects()[("Secret", "offhours-secrets")]["stringData"],
                },
                id="kubernetes_configmap_and_secret",
            ),
        ],
    )
    def test_example_values_load(
        self, monkeypatch: pytest.MonkeyPatch, environment: Any
    ) -> None:
        """Settings built from the example files' values validates, with those values."""
        values = environment()
        for name in [name for name in os.environ if name.startswith("OFFHOURS_")]:
            monkeypatch.delenv(name)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert (values["OFFHOURS_BROKER_URL"], int(values["OFFHOURS_PARTITIONS"])) == (
            settings.broker_url, settings.partitions
        )
        assert 0 < len(settings.edge.accounts)
        assert 0 < len(settings.responders.accounts)

    def test_resolver_rejects_unknown_names(self) -> None:
        """The name check itself tells a typo from a setting."""
        cases = {
            "OFFHOURS_PARTITIONS": True,
            "OFFHOURS_PARTITION": False,
            "OFFHOURS_RESPONDERS__SMTP_HOST": True,
            "OFFHOURS_RESPONDERS__SMTP_HOSTNAME": False,
            "OFFHOURS_RESPONDERS__ACCOUNTS": True,
            "OFFHOURS_RESPONDERS__ACCOUNTS__ACME__ACCESS_TOKEN": True,
            "OFFHOURS_RESPONDERS__ACCOUNTS__ACME__TOKEN": False,
            "OFFHOURS_PARTITIONS__X": False,
            "KAFKA_PARTITIONS": False,
        }
        assert cases == {name: names_a_setting(name) for name in cases}

    def test_readme_documents_every_setting(self) -> None:
        """deploy/README.md has a row for every variable an operator can set."""
        readme = (DEPLOY / "README.md").read_text()
        assert [] == [name for name in settings_env_names() if f"`{name}`" not in readme]


# --- Dockerfile ------------------------------------------------------------------------


async def healthz_server(status: int) -> web.AppRunner:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(status=status, text="ok" if status == 200 else "starting")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


class TestDockerfile:
    """deploy/Dockerfile and .dockerignore, read the way hadolint would."""

    def test_multi_stage_onto_python_slim(self) -> None:
        """A builder stage makes wheels; the runtime stage is python:3.11-slim."""
        instructions = dockerfile_instructions()
        stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
        python_image = dict(
            arguments.split("=", 1) for keyword, arguments in instructions if keyword == "ARG"
        )["PYTHON_IMAGE"]
        assert ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"] == stages
        assert "python:3.11-slim" == python_image

    def test_runtime_installs_only_the_wheels(self) -> None:
        """The runtime installs offhours with the rocksdb extra from the builder's wheels only."""
        runs = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]
        installs = [run for run in runs if "pip install" in run]
        assert 1 == len(installs)
        assert all(part in installs[0] for part in ("--no-index", "from=builder", '"offhours[rocksdb]"'))
        assert not any(kw == "COPY" and "--from" in args for kw, args in dockerfile_instructions())

    def test_runs_as_non_root_with_a_health_check(self) -> None:
        """The last USER is a non-zero uid; HEALTHCHECK, ENTRYPOINT and CMD are as promised."""
        last = dict(dockerfile_instructions())
        expected = {"user": True, "healthz": True, "curl": False,
                    "ENTRYPOINT": '["offhours"]', "CMD": '["run"]'}
        actual = {
            "user": int(last["USER"].split(":")[0]) > 0,
            "healthz": "/healthz" in last["HEALTHCHECK"],
            "curl": "curl" in last["HEALTHCHECK"] or "wget" in last["HEALTHCHECK"],
            "ENTRYPOINT": last["ENTRYPOINT"],
            "CMD": last["CMD"],
        }
        assert expected == actual

    @pytest.mark.parametrize(
        ("status", "healthy"),
        [pytest.param(200, True, id="healthy"), pytest.param(503, False, id="unhealthy")],
    )
    async def test_health_check_command_reports_the_endpoint(self, status: int, healthy: bool) -> None:
        """The HEALTHCHECK command, run as written, exits 0 only on a 2xx from /healthz."""
        command = json.loads(dict(dockerfile_instructions())["HEALTHCHECK"].split("CMD", 1)[1])
        runner = await healthz_server(status)
        try:
            port = runner.addresses[0][1]
            process = await asyncio.create_subprocess_exec(
                sys.executable, *command[1:],
                env={**os.environ, "OFFHOURS_WEB_PORT": str(port)},
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            returncode = await asyncio.wait_for(process.wait(), 30)
        finally:
            await runner.cleanup()
        assert ("python", healthy) == (command[0], returncode == 0)

    def test_dockerignore_lets_in_every_package(self) -> None:
        """The allow-list .dockerignore admits the project metadata and every package."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
        lines = [
            line for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        expected = ["!pyproject.toml", "!README.md", *[f"!{package}/" for package in packages]]
        assert ("*", []) == (lines[0], [line for line in expected if line not in lines])


# --- Workers on Apache Kafka -----------------------------------------------------------


class TestWorkersOnKafka:
    """Compose and Kubernetes run offhours alike; the Kafka cluster rounds run the Kubernetes workers' settings."""

    def test_every_offhours_run_produces_idempotently(self) -> None:
        commands = {f"compose {name}": service.get("command", []) for name, service in offhours_services(load_compose()).items()}
        commands |= {f"kubernetes {name}": template["spec"]["containers"][0].get("args", []) for name, template in pod_templates()}
        runs = {where: args for where, args in commands.items() if args[:1] == ["run"]}
        assert len(runs) >= 6, f"fewer offhours services than expected: {sorted(commands)}"
        assert {} == {where: args for where, args in runs.items() if IDEMPOTENT_FLAG not in args}

    def test_compose_and_kubernetes_workers_differ_only_in_replication(self) -> None:
        """Compose has one Kafka node, so replication 1; everything else about Kafka is the same."""
        compose, kubernetes = compose_worker().pipeline(), kubernetes_worker().pipeline()
        assert {"replication": (1, 3)} == {
            name: (compose[name], kubernetes[name]) for name in PIPELINE if compose[name] != kubernetes[name]
        }

    def test_workers_run_with_the_apache_kafka_settings(self) -> None:
        for deployed in (compose_worker(), kubernetes_worker()):
            settings = deployed.settings()
            assert (False, "rocksdb://", True) == (settings.on_tansu, settings.store, deployed.idempotent), deployed.where
