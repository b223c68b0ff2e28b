"""The team profile's deployment files, checked offline: no Docker daemon, no cluster, no image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.profile import (
    COMPOSE_FILE,
    INFRA,
    ONE_SHOT,
    REPO,
    compose,
    env_files,
    make_secrets,
    read_env_file,
)

PUBLISHED = {5000, 4200, 8787}
"""The UIs: MLflow, Prefect, the Dask dashboard."""
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|ACCESS_KEY|_KEY$")
CREDENTIALS_IN_URI = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
K8S_VERSIONS = ["1.32.0", "1.37.0"]
PROJECT_UID = 10001
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
"""Volume types the "restricted" pod security profile allows."""
# Services that run the same command in both files (SeaweedFS advertises another address there;
# on Kubernetes the deployment step only creates the pool, and mlops serve registers the deployments).
SAME_COMMAND = ["mlflow-migrate", "mlflow", "prefect-migrate", "prefect-server",
                "prefect-worker", "mlops-serve", "dask-scheduler", "dask-worker"]


# --- Compose -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port, short or long syntax."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            *host, published, target = str(port).split(":")
            ports.append((host[0] if host else "", int(published), int(target)))
    return ports


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def strings(value: Any) -> list[str]:
    """Every string in a loaded YAML value, keys included."""
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [str(key), *strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [str(value)] if value is not None else []


def test_compose_file_follows_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_the_uis_are_published_and_only_on_localhost(services):
    ports = {name: published_ports(service) for name, service in services.items()}
    everything = [port for listed in ports.values() for port in listed]
    assert all(host == "127.0.0.1" for host, _, _ in everything), ports
    assert sorted(published for _, published, _ in everything) == sorted(PUBLISHED)
    publishing = {name for name, listed in ports.items() if listed}
    assert publishing == {"mlflow", "prefect-server", "dask-scheduler"}
    assert not any("network_mode" in service for service in services.values())


def test_every_long_running_service_has_a_health_check_and_restarts(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_one_shot_steps_are_awaited_to_completion(services):
    awaited = set()
    for name, service in services.items():
        for dependency, condition in dependencies(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == wanted, f"{name} -> {dependency}: {condition}"
            awaited.add(dependency)
    assert awaited >= ONE_SHOT


def test_start_order(services):
    def after(name: str) -> set[str]:
        direct = set(dependencies(services[name]))
        return direct.union(*(after(d) for d in direct))

    assert {"postgres", "mlflow-migrate", "seaweedfs"} <= after("mlflow")
    assert {"postgres", "prefect-migrate"} <= after("prefect-server")
    assert {"prefect-server", "mlflow"} <= after("prefect-deploy")
    for name in ("prefect-worker", "mlops-serve"):
        assert {"prefect-deploy", "mlflow", "seaweedfs", "dask-scheduler"} <= after(name)
    assert "dask-scheduler" in after("dask-worker")


def test_no_secret_is_written_in_the_compose_file(services):
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping, please"
        leaked = [key for key in environment if SECRET_NAME.search(key)]
        assert leaked == [], f"{name} sets {leaked} in the compose file instead of an env file"
    in_uris = [s for s in strings(compose()) if CREDENTIALS_IN_URI.search(s)]
    assert in_uris == []
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"(?i)--password|password=|PGPASSWORD=", text)
    assert "${" not in text.replace("$$", ""), "no compose interpolation: secrets come from env_file"


def test_env_files_are_the_ones_make_secrets_writes(services, tmp_path):
    declared = env_files()
    used = {path for service in services.values() for path in service.get("env_file", [])}
    assert used == {f"env/{name}" for name in declared}
    assert make_secrets(tmp_path).returncode == 0
    assert {name: list(read_env_file(tmp_path / name)) for name in declared} == declared


def test_clients_get_the_client_environment(services):
    client = compose()["x-client-environment"]
    assert client["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert client["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert client["MLOPS_DVC_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert client["MLOPS_DASK_ADDRESS"] == "tcp://dask-scheduler:8786"
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env_files()["client.env"])
    for name in ("prefect-deploy", "prefect-worker", "mlops-serve", "dask-worker"):
        assert client.items() <= services[name]["environment"].items(), name
        assert "env/client.env" in services[name]["env_file"], name
    pool = client["MLOPS_WORK_POOL"]
    assert services["prefect-worker"]["command"][services["prefect-worker"]["command"].index("--pool") + 1] \
        == pool
    assert f"work-pool create {pool} " in " ".join(services["prefect-deploy"]["command"])


def test_the_landing_zone_volume_is_shared_by_mlops_serve_and_the_worker(services):
    for name in ("prefect-worker", "mlops-serve"):
        assert "project:/project" in services[name]["volumes"], name
        assert services[name]["environment"]["MLOPS_PROJECT"] == "/project", name
    assert {"postgres-data", "seaweedfs-data", "project"} <= set(compose()["volumes"])


def test_files_the_services_run_are_in_the_repository():
    named = {m for s in strings(compose()) for m in re.findall(r"(?:\./)?(?:infra/)?compose/[\w.-]+", s)}
    assert named
    for name in named:
        assert (INFRA / "compose" / Path(name).name).is_file(), name


# --- Kubernetes ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: the kustomize base cannot be rendered")
    done = subprocess.run(["kubectl", "kustomize", str(INFRA / "k8s" / "base")], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}]


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return pod(workload).get("initContainers", []) + pod(workload)["containers"]


def named(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kustomize_renders_valid_kubernetes_objects(rendered, version):
    import kubernetes_validate

    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")


def test_the_services_of_the_profile_are_all_there(rendered):
    assert {o["metadata"].get("namespace", "mlops") for o in rendered} == {"mlops"}
    assert set(named(rendered, "StatefulSet")) == {"postgres", "seaweedfs"}
    # The shared clone is filled by each pod's init container rather than a Job.
    assert set(named(rendered, "Job")) == ONE_SHOT - {"project-init"}
    assert set(named(rendered, "Deployment")) == {"mlflow", "prefect-server", "prefect-worker", "mlops-serve",
                                                  "dask-scheduler", "dask-worker"}
    assert named(rendered, "Deployment")["dask-worker"]["spec"]["replicas"] == 2
    assert set(named(rendered, "Service")) == {"postgres", "seaweedfs", "mlflow", "prefect-server",
                                               "dask-scheduler"}


def test_no_secret_is_rendered_or_committed(rendered):
    assert [o["metadata"]["name"] for o in rendered if o["kind"] == "Secret"] == []
    kustomization = yaml.safe_load((INFRA / "k8s" / "base" / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization
    for obj in rendered:
        in_uris = [s for s in strings(obj) if CREDENTIALS_IN_URI.search(s)]
        assert in_uris == [], obj["metadata"]["name"]
        for container in containers(obj) if obj in workloads(rendered) else []:
            literal = [e["name"] for e in container.get("env", [])
                       if SECRET_NAME.search(e["name"]) and "value" in e]
            assert literal == [], f"{obj['metadata']['name']}: {literal} must come from a Secret"


def test_long_running_containers_have_probes(rendered):
    for workload in workloads(rendered):
        if workload["kind"] == "Job":
            continue
        for container in pod(workload)["containers"]:
            missing = [p for p in ("livenessProbe", "readinessProbe") if p not in container]
            assert missing == [], f"{workload['metadata']['name']}/{container['name']} lacks {missing}"
    paths = {c["readinessProbe"].get("httpGet", {}).get("path") for w in workloads(rendered)
             if w["kind"] != "Job" for c in pod(w)["containers"]}
    assert {"/health", "/api/ready"} <= paths
    prefect = pod(named(rendered, "Deployment")["prefect-server"])["containers"][0]
    assert prefect["livenessProbe"]["httpGet"]["path"] == "/api/health"


def test_pods_meet_the_restricted_security_profile(rendered):
    for workload in workloads(rendered):
        name, spec = workload["metadata"]["name"], pod(workload)
        context = spec.get("securityContext", {})
        assert context.get("runAsNonRoot") is True and context.get("runAsUser", 1) != 0, name
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        assert spec.get("automountServiceAccountToken") is False, name
        # Service links would put e.g. PREFECT_SERVER_PORT=tcp://... into Prefect's settings.
        assert spec.get("enableServiceLinks") is False, name
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, f"{name}: {volume}"
        for container in containers(workload):
            own = container.get("securityContext", {})
            assert own.get("allowPrivilegeEscalation") is False, f"{name}/{container['name']}"
            assert own.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{container['name']}"
            assert not own.get("privileged") and own.get("runAsUser", 1) != 0, f"{name}/{container['name']}"
            if container["image"].startswith("mlops-pipelines"):
                assert context["runAsUser"] == PROJECT_UID, name
    labels = named(rendered, "Namespace")["mlops"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_container_has_resource_requests_and_limits(rendered):
    for workload in workloads(rendered):
        for container in containers(workload):
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), \
                    f"{workload['metadata']['name']}/{container['name']} {part}"


def test_secrets_are_referenced_by_name_with_the_keys_make_secrets_writes(rendered, tmp_path):
    assert make_secrets(tmp_path).returncode == 0
    written = {f"mlops-{name.removesuffix('.env')}": set(read_env_file(tmp_path / name))
               for name in env_files()}
    referenced = set()
    for workload in workloads(rendered):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    referenced.add(source["secretRef"]["name"])
            for variable in container.get("env", []):
                key = variable.get("valueFrom", {}).get("secretKeyRef")
                if key:
                    assert key["key"] in written.get(key["name"], set()), f"{key['name']}/{key['key']}"
                    referenced.add(key["name"])
    assert referenced == set(written)


def test_references_between_objects_resolve(rendered):
    config_maps, claims = named(rendered, "ConfigMap"), named(rendered, "PersistentVolumeClaim")
    pods = {w["metadata"]["name"]: w for w in workloads(rendered)}
    for workload in pods.values():
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
        for volume in pod(workload).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
    for name, service in named(rendered, "Service").items():
        selected = [w for w in pods.values() if w["kind"] != "Job" and service["spec"]["selector"].items()
                    <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        port_names = {p.get("name") for c in pod(selected[0])["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, name


def test_kubernetes_runs_what_compose_runs(rendered, services):
    pods = {w["metadata"]["name"]: w for w in workloads(rendered)}
    for name in SAME_COMMAND:
        container = pod(pods[name])["containers"][0]
        assert container.get("args") == [str(a) for a in services[name]["command"]], name
        assert "command" not in container, f"{name}: keep the image's entrypoint (tini)"
    client = read_env_file(INFRA / "k8s" / "base" / "client-config.env")
    assert client == compose()["x-client-environment"]
    # One PostgreSQL init script serves both.
    assert "./k8s/base/postgres-init.sh:/docker-entrypoint-initdb.d/10-mlops-databases.sh:ro" in \
        services["postgres"]["volumes"]


# --- Dockerfile ----------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of infra/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_base_image_is_pinned():
    instructions = dockerfile()
    defaults = dict(re.match(r"(\w+)=(\S+)", args).groups() for op, args in instructions
                    if op == "ARG" and "=" in args)
    images = [re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], args.split()[0])
              for op, args in instructions if op == "FROM"]
    assert images
    for image in images:
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", image
    assert images[0].startswith("python:3.11-slim-bookworm")


def test_dependencies_install_from_the_constraints_before_the_code_is_copied():
    instructions = dockerfile()
    installs = [(i, args) for i, (op, args) in enumerate(instructions)
                if op == "RUN" and "pip install" in args]
    assert installs
    for _, args in installs:
        for command in re.split(r"&&|;", args):
            if "pip install" in command:
                assert "-c infra/constraints.txt" in command, command
    first_install = installs[0][0]
    assert '".[team]"' in installs[0][1] and "download.pytorch.org/whl/cpu" in installs[0][1]
    copies = [(i, args) for i, (op, args) in enumerate(instructions) if op == "COPY"]
    before = {args.split()[-2] for i, args in copies if i < first_install}
    assert before == {"pyproject.toml", "infra/constraints.txt"}
    assert any(args.split()[-2:] == [".", "."] for i, args in copies if i > first_install)
    assert "git" in next(args for op, args in instructions if op == "RUN" and "apt-get install" in args)


def test_the_image_runs_as_a_user_that_is_not_root():
    users = [args.split(":")[0] for op, args in dockerfile() if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert users[-1] == str(PROJECT_UID)
    workdir = [args for op, args in dockerfile() if op == "WORKDIR"]
    assert workdir[-1] == "/app"


def test_nothing_is_added_from_urls_and_no_secret_is_baked_in():
    for op, args in dockerfile():
        assert not (op == "ADD" and re.search(r"https?://|git@", args)), args
        if op in {"ENV", "ARG"}:
            assert not SECRET_NAME.search(args), args
    env = " ".join(args for op, args in dockerfile() if op == "ENV")
    for opt_out in ("PREFECT_SERVER_ANALYTICS_ENABLED=false", "DO_NOT_TRACK=true", "DVC_NO_ANALYTICS=true"):
        assert opt_out in env


def glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex: ** any folders, * and ? within a name, [...] a class."""
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] in "*?":
            parts.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            parts.append(pattern[i:end + 1])
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return "".join(parts)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line of .dockerignore, matched from the context's root; a folder
    leaves out everything in it."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            regex = glob_regex(line.lstrip("!").strip("/"))
            rules.append((line.startswith("!"), re.compile(regex + "(?:/.*)?")))
    return rules


def left_out(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    verdict = False
    for negated, rule in rules:
        if rule.fullmatch(path):
            verdict = not negated
    return verdict


def test_the_build_context_leaves_out_secrets_and_local_state_but_no_tracked_file():
    rules = dockerignore_rules()
    for path in ("infra/env/client.env", ".venv/bin/python", "data/incoming/stock/x.csv", "mlflow.db",
                 "mlartifacts/1/a", ".mlops/logs/mlops.log", ".dvc/config.local", ".dvc/cache/files/x",
                 "storage/x", "pipelines/__pycache__/a.pyc"):
        assert left_out(path, rules), path
    for path in ("infra/compose/mlflow-auth-config.sh", "pyproject.toml", ".git/HEAD", "data.dvc"):
        assert not left_out(path, rules), path
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    excluded = [path for path in listed.stdout.splitlines() if left_out(path, rules)]
    assert excluded == [], "tracked files left out of the image would make its checkout look modified"
