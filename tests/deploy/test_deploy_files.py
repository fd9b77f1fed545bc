"""The deployment files in deploy/: container image, compose, systemd and Kubernetes.

No container engine or cluster runs in CI, so these tests read the files and check what
can be checked without one: that each way of running Emberwatch starts the same process on
the same port, migrates before it runs, probes the right endpoints, runs unprivileged, has
time to drain on SIGTERM, and is given every variable the shared config references.
Where ``systemd-analyze`` or ``kubectl`` is installed, they check the files too.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from emberwatch.config import validate_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONFIG_FILE = DEPLOY / "emberwatch.toml"
KUBERNETES = DEPLOY / "kubernetes"

PORT = 8787
UID = 10001
MIN_GRACE_SECONDS = 45
NODES = ("node1", "node2")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Config keys whose values are credentials: their variables must come from a secret store.
CREDENTIAL_KEYS = {"database_url", "password", "webhook_url", "secret", "metrics_token"}


# --- reading the files --------------------------------------------------------------------


def _config() -> dict[str, Any]:
    return tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))


def _refs(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(config key, variable) for every ``${VAR}`` in the parsed config's values."""
    if isinstance(value, dict):
        return [ref for k, v in value.items() for ref in _refs(v, k)]
    if isinstance(value, list):
        return [ref for v in value for ref in _refs(v, key)]
    if isinstance(value, str):
        return [(key, name) for name in ENV_REF.findall(value)]
    return []


def _referenced_vars() -> set[str]:
    return {name for _, name in _refs(_config())}


def _credential_vars() -> set[str]:
    return {name for key, name in _refs(_config()) if key in CREDENTIAL_KEYS}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(args.split())))
    return instructions


def _docker(keyword: str) -> list[str]:
    return [args for kw, args in _dockerfile() if kw == keyword]


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def _image_env() -> dict[str, str]:
    env = {}
    for kw, args in _runtime_stage():
        if kw == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args))
    return env


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _service(name: str) -> dict[str, Any]:
    return _compose()["services"][name]


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _env_file_keys(service: dict[str, Any]) -> set[str]:
    files = service.get("env_file", [])
    keys = set()
    for entry in [files] if isinstance(files, str | dict) else files:
        path = DEPLOY / (entry["path"] if isinstance(entry, dict) else entry)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    keys.add(line.split("=", 1)[0].strip())
    return keys


def _unit() -> dict[str, list[tuple[str, str]]]:
    """systemd sections, each a list of (key, value): keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in (DEPLOY / "systemd" / "emberwatch.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def _service_values(key: str) -> list[str]:
    return [value for k, value in _unit()["Service"] if k == key]


def _seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    match = re.fullmatch(r"(\d+)\s*([a-z]*)", value.strip())
    assert match and match[2] in units, f"cannot read the duration {value!r}"
    return int(match[1]) * units[match[2]]


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for name in _kustomization()["resources"]:
        text = (KUBERNETES / name).read_text(encoding="utf-8")
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def _manifest(kind: str) -> dict[str, Any]:
    found = [doc for doc in _manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/kubernetes, found {len(found)}"
    return found[0]


def _pod() -> dict[str, Any]:
    return _manifest("Deployment")["spec"]["template"]["spec"]


def _main_container() -> dict[str, Any]:
    (container,) = _pod()["containers"]
    return container


def _init_container() -> dict[str, Any]:
    (container,) = _pod()["initContainers"]
    return container


def _vars_given_to(container: dict[str, Any]) -> set[str]:
    secret = _manifest("Secret")
    given = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if source.get("secretRef", {}).get("name") == secret["metadata"]["name"]:
            given |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return given


# --- the shared config --------------------------------------------------------------------


def test_the_deploy_config_serves_http_on_8787_with_a_secret_and_public_url():
    http = _config()["http"]
    assert http["bind"] == f"0.0.0.0:{PORT}"
    assert set(http) == {"bind", "secret", "public_url", "metrics_token"}
    assert ENV_REF.fullmatch(http["secret"]), "the link secret must come from the environment"


def test_metrics_stay_behind_a_token_the_scrape_job_sends():
    http = _config()["http"]
    assert not http.get("metrics_public", False), "/metrics must not be open to anyone"
    assert ENV_REF.fullmatch(http["metrics_token"]), "the token must come from the environment"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "scrape-emberwatch.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["job_name"] == "emberwatch" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]


def test_the_deploy_config_validates_with_the_real_loader():
    environ = {name: "x" for name in _referenced_vars()}
    environ |= {
        "EMBERWATCH_DATABASE_URL": "postgresql://emberwatch:pw@postgres:5432/emberwatch",
        "EMBERWATCH_PUBLIC_URL": f"http://localhost:{PORT}",
        "EMBERWATCH_LINK_SECRET": "0123456789abcdef" * 4,
        "EMBERWATCH_METRICS_TOKEN": "fedcba9876543210" * 4,
        "SMTP_HOST": "mailcatcher",
        "SMTP_PORT": "1025",
        "SMTP_SECURITY": "none",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
    }
    config = validate_config(_config(), str(CONFIG_FILE), environ)
    assert config.http is not None and config.http.host_port == ("0.0.0.0", PORT)
    assert config.channels.email is not None and config.channels.email.port == 1025
    assert config.sources, "the deploy config should poll at least one source"


def test_every_credential_in_the_deploy_config_is_an_environment_reference():
    for key, value in [
        ("database_url", _config()["database_url"]),
        ("password", _config()["channels"]["email"]["password"]),
        ("webhook_url", _config()["channels"]["slack"]["webhook_url"]),
        ("secret", _config()["http"]["secret"]),
        ("metrics_token", _config()["http"]["metrics_token"]),
    ]:
        assert ENV_REF.fullmatch(value), f"{key} must be a ${{VAR}} reference, not a literal"


# --- the container image ------------------------------------------------------------------


def test_the_image_is_built_in_stages_on_a_slim_python_311():
    args = {
        name: default for name, _, default in (a.partition("=") for a in _docker("ARG")) if default
    }
    bases = [re.sub(r"\$\{?(\w+)\}?", lambda m: args[m[1]], f.split()[0]) for f in _docker("FROM")]
    assert len(bases) >= 2, "build a wheel in one stage, install it in another"
    for base in bases:
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    runtime = " ".join(args for kw, args in _runtime_stage() if kw == "RUN")
    assert "--no-index" in runtime and "from=build" in runtime


def test_the_container_runs_as_a_non_root_user():
    user = [args for kw, args in _runtime_stage() if kw == "USER"]
    assert user, "the runtime stage must switch to a non-root USER"
    uid = user[-1].split(":")[0]
    assert uid.isdigit(), "use a numeric UID so Kubernetes can verify runAsNonRoot"
    assert int(uid) == UID


def test_the_image_exposes_8787_and_checks_healthz_with_python():
    assert _docker("EXPOSE") == [str(PORT)]
    (healthcheck,) = _docker("HEALTHCHECK")
    assert "curl" not in healthcheck and "wget" not in healthcheck, "slim images have neither"
    assert "urllib" in healthcheck
    url = _image_env().get("EMBERWATCH_HEALTHCHECK_URL", healthcheck)
    assert f":{PORT}/healthz" in url


def test_the_image_starts_emberwatch_run_with_the_mounted_config():
    assert _docker("ENTRYPOINT") == ['["emberwatch"]']
    assert _docker("CMD") == ['["run"]']
    assert _image_env()["EMBERWATCH_CONFIG"] == "/etc/emberwatch/emberwatch.toml"
    assert _docker("STOPSIGNAL") == ["SIGTERM"]


def test_the_build_context_holds_only_what_the_image_copies():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "start from nothing, then allow what the build needs"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for args in _docker("COPY"):
        if "--from" not in args:
            copied |= {src.rstrip("/") for src in args.split()[:-1]}
    assert copied == allowed
    for path in copied:
        assert (REPO / path).exists(), f"the Dockerfile copies {path}, missing from the repo"


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_two_emberwatch_nodes_with_postgres_and_a_mail_catcher():
    services = _compose()["services"]
    assert set(NODES) | {"postgres", "mailcatcher", "migrate"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "mailpit" in services["mailcatcher"]["image"]
    for node in NODES:
        assert services[node]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / services[node]["build"]["context"] / "deploy/Dockerfile").exists()
        assert services[node]["command"] == ["run"]


def test_the_nodes_are_on_host_ports_8787_and_8788_and_mail_on_8025():
    assert _service("node1")["ports"] == [f"8787:{PORT}"]
    assert _service("node2")["ports"] == [f"8788:{PORT}"]
    assert "8025:8025" in _service("mailcatcher")["ports"]


def test_the_nodes_start_only_after_the_migration_completes():
    migrate = _service("migrate")
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for node in NODES:
        depends = _service(node)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", [*NODES, "postgres", "mailcatcher"])
def test_every_long_running_service_has_a_healthcheck_and_restarts(name):
    service = _service(name)
    assert service["healthcheck"]["test"]
    assert service["restart"] in {"unless-stopped", "always", "on-failure"}


def test_the_node_healthcheck_asks_readyz_on_8787():
    for node in NODES:
        check = " ".join(_service(node)["healthcheck"]["test"])
        assert f"127.0.0.1:{PORT}/readyz" in check


def test_the_nodes_have_time_to_drain_on_sigterm():
    for node in NODES:
        assert _seconds(_service(node)["stop_grace_period"]) >= MIN_GRACE_SECONDS


@pytest.mark.parametrize("name", [*NODES, "migrate"])
def test_compose_mounts_the_deploy_config_read_only(name):
    service = _service(name)
    target = _compose_env(service).get("EMBERWATCH_CONFIG", _image_env()["EMBERWATCH_CONFIG"])
    mounts = [v.split(":") for v in service["volumes"]]
    assert [str(DEPLOY / "emberwatch.toml"), target, "ro"] in [
        [str((DEPLOY / src).resolve()), dst, *mode] for src, dst, *mode in mounts
    ]


@pytest.mark.parametrize("name", [*NODES, "migrate"])
def test_compose_gives_every_variable_the_config_references(name):
    service = _service(name)
    given = set(_compose_env(service)) | _env_file_keys(service)
    missing = _referenced_vars() - given
    assert not missing, f"{name} lacks {sorted(missing)}, referenced by deploy/emberwatch.toml"


def test_compose_refuses_to_start_without_the_secrets():
    env = _compose_env(_service("node1"))
    for name in _credential_vars():
        assert re.search(r"\$\{\w+:\?[^}]+\}", env[name]), f"{name} should be ${{VAR:?why}}"


def test_compose_sends_mail_to_the_mail_catcher_and_uses_postgres():
    env = _compose_env(_service("node1"))
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_SECURITY"]) == (
        "mailcatcher",
        "1025",
        "none",
    )
    assert env["EMBERWATCH_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["EMBERWATCH_DATABASE_URL"]


def test_the_env_example_lists_every_variable_compose_requires():
    required = set(re.findall(r"\$\{(\w+):\?", (DEPLOY / "compose.yaml").read_text()))
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*(\w+)=", example, flags=re.MULTILINE))
    assert required <= listed, f"add {sorted(required - listed)} to deploy/.env.example"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


# --- systemd ------------------------------------------------------------------------------

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "DynamicUser": "yes",
    "StateDirectory": "emberwatch",
}


@pytest.mark.parametrize(("key", "value"), HARDENING.items())
def test_the_systemd_unit_is_hardened(key, value):
    assert value in _service_values(key), f"add {key}={value} to emberwatch.service"


def test_the_systemd_unit_migrates_before_it_runs():
    (pre,) = _service_values("ExecStartPre")
    (start,) = _service_values("ExecStart")
    assert shlex.split(pre)[1:] == ["db", "upgrade"]
    assert shlex.split(start)[1:] == ["run"]
    assert shlex.split(pre)[0] == shlex.split(start)[0]


def test_the_systemd_unit_reads_its_config_and_secrets_from_etc():
    assert _service_values("EnvironmentFile") == ["/etc/emberwatch/emberwatch.env"]
    assert "EMBERWATCH_CONFIG=/etc/emberwatch/emberwatch.toml" in _service_values("Environment")


def test_the_systemd_unit_drains_on_sigterm_and_restarts_on_failure():
    assert _service_values("KillSignal") == ["SIGTERM"]
    (timeout,) = _service_values("TimeoutStopSec")
    assert _seconds(timeout) >= MIN_GRACE_SECONDS
    assert _service_values("Restart") == ["on-failure"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_accepts_the_unit(tmp_path):
    # verify needs the executables to exist: stand `true` in for the installed emberwatch.
    (start,) = _service_values("ExecStart")
    unit = (DEPLOY / "systemd" / "emberwatch.service").read_text()
    unit = unit.replace(shlex.split(start)[0], shutil.which("true") or "/bin/true")
    (tmp_path / "emberwatch.service").write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "emberwatch.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if "emberwatch.service:" in line]
    assert result.returncode == 0 and not complaints, result.stderr


# --- Kubernetes ---------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest():
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_kustomization()["resources"]) == manifests


def test_the_deployment_runs_at_least_two_replicas():
    spec = _manifest("Deployment")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_probes_ask_healthz_and_readyz_on_the_named_http_port():
    container = _main_container()
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", PORT)
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness")}
    probes["readiness"] = container["readinessProbe"]["httpGet"]
    assert {kind: (p["path"], p["port"]) for kind, p in probes.items()} == {
        "startup": ("/healthz", "http"),
        "liveness": ("/healthz", "http"),
        "readiness": ("/readyz", "http"),
    }


def test_the_service_routes_8787_to_the_http_port_and_invites_prometheus():
    service = _manifest("Service")
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", PORT, "http")
    assert service["spec"]["type"] == "ClusterIP"
    pod_labels = _manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_pods_run_as_a_non_root_user_with_a_read_only_root():
    pod = _pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in (_main_container(), _init_container()):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == UID
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_pods_have_time_to_drain_on_sigterm():
    assert _pod()["terminationGracePeriodSeconds"] >= MIN_GRACE_SECONDS


def test_an_init_container_migrates_with_the_same_image_config_and_variables():
    init, main = _init_container(), _main_container()
    assert init["args"] == ["db", "upgrade"]
    assert main["args"] == ["run"]
    for key in ("image", "env", "envFrom", "volumeMounts"):
        assert init[key] == main[key], f"the init container's {key} differs from the main one"


def test_the_configmap_is_mounted_where_the_image_reads_the_config():
    expected = _image_env()["EMBERWATCH_CONFIG"]
    configmap = _manifest("ConfigMap")
    (volume,) = [v for v in _pod()["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    (item,) = volume["configMap"]["items"]
    (mount,) = [m for m in _main_container()["volumeMounts"] if m["name"] == volume["name"]]
    assert f"{mount['mountPath']}/{item['path']}" == expected
    assert mount["readOnly"] is True
    env = {item["name"]: item.get("value") for item in _main_container()["env"]}
    assert env.get("EMBERWATCH_CONFIG", expected) == expected


def test_the_configmap_carries_deploy_emberwatch_toml_verbatim():
    data = _manifest("ConfigMap")["data"]
    assert data["emberwatch.toml"] == CONFIG_FILE.read_text(encoding="utf-8"), (
        "deploy/kubernetes/configmap.yaml has drifted from deploy/emberwatch.toml: "
        "paste the file, indented four spaces, under `emberwatch.toml: |`"
    )


@pytest.mark.parametrize("which", ["init", "main"])
def test_the_pods_are_given_every_variable_the_config_references(which):
    container = _init_container() if which == "init" else _main_container()
    missing = _referenced_vars() - _vars_given_to(container)
    assert not missing, f"add {sorted(missing)} to secret.yaml (credentials) or env"


def test_credentials_come_from_the_secret_not_from_plain_env():
    secret_keys = set(_manifest("Secret")["stringData"])
    plain = {item["name"] for item in _main_container()["env"]}
    assert _credential_vars() <= secret_keys
    assert not _credential_vars() & plain


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not found")
def test_kustomize_builds_the_manifests():
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    expected = ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]
    assert kinds == expected


# --- across all of them -------------------------------------------------------------------


def test_every_way_of_running_listens_where_the_config_binds():
    port = int(_config()["http"]["bind"].rsplit(":", 1)[1])
    assert port == PORT
    assert _docker("EXPOSE") == [str(port)]
    assert all(p.endswith(f":{port}") for node in NODES for p in _service(node)["ports"])
    assert _main_container()["ports"][0]["containerPort"] == port


def test_the_deployment_doc_names_every_variable_the_config_references():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    doc = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in _referenced_vars() if f"`{name}`" not in doc)
    assert not missing, f"README.md's Deployment section should explain {missing}"


def test_the_systemd_unit_reloads_with_sighup():
    (reload,) = _service_values("ExecReload")
    assert shlex.split(reload) == ["/bin/kill", "-HUP", "$MAINPID"]
