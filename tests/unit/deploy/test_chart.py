"""The Helm chart (deploy/helm/ecoc), checked offline: helm lint, helm template with each values file, every
rendered object against its schema (kubeconform), and what the objects say against the code they deploy.

helm and kubeconform are built from their Go modules into .cache/tools by deploy/helm/build-tools.sh
(`make chart-tools`); `make test` starts that build in the background at its start and this module
waits for it (the script holds a lock while it builds). `make test` runs this module last.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml

from deploy.helm.topology import CHART
from services.launch import SERVICES
from shared.auth import Role, env_name
from shared.settings import PROJECT_ROOT, SERVICE_PORT_OFFSETS, ServiceSettings

pytestmark = pytest.mark.unit

VALUES_DIR = PROJECT_ROOT / "deploy" / "helm" / "values"
VALUES = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))
CACHE = PROJECT_ROOT / ".cache"
HELM_VERSION, KUBECONFORM_VERSION = "v3.21.4", "v0.8.0"
CRD_SCHEMAS = PROJECT_ROOT / "deploy" / "schemas"
BUILD_MINUTES = 20  # the first build of helm took 4-7 minutes here on two busy cores


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    """helm and kubeconform, built once (or waited for while `make test` builds them)."""
    script = PROJECT_ROOT / "deploy" / "helm" / "build-tools.sh"
    done = subprocess.run(
        ["bash", str(script), str(CACHE)],
        capture_output=True,
        text=True,
        timeout=BUILD_MINUTES * 60,
        env={**os.environ, "HELM_VERSION": HELM_VERSION, "KUBECONFORM_VERSION": KUBECONFORM_VERSION},
    )
    assert done.returncode == 0, (
        f"building helm and kubeconform failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    )
    return {
        "helm": CACHE / "tools" / f"helm-{HELM_VERSION}" / "helm",
        "kubeconform": CACHE / "tools" / f"kubeconform-{KUBECONFORM_VERSION}" / "kubeconform",
    }


KUBE_VERSION = (
    kubernetes_validate.utils.latest_version()
)  # the newest Kubernetes whose schemas the package has


def helm(tools: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools["helm"]), *args], capture_output=True, text=True, timeout=120)


def template(tools: dict[str, Path], values: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return helm(
        tools,
        "template",
        "ecoc",
        str(CHART),
        "--namespace",
        "plant",
        "--kube-version",
        KUBE_VERSION,
        "-f",
        str(VALUES_DIR / f"{values}.yaml"),
        *extra,
    )


@pytest.fixture(scope="module")
def rendered(tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each values file's manifests, in a file of their own."""
    folder = tmp_path_factory.mktemp("rendered")
    out = {}
    for values in VALUES:
        done = template(tools, values)
        assert done.returncode == 0, f"helm template -f {values}.yaml: {done.stderr}"
        out[values] = folder / f"{values}.yaml"
        out[values].write_text(done.stdout)
    return out


@functools.cache
def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(path: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects(path) if o["kind"] == kind}


def values_of(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()))


def test_there_are_at_least_three_values_files_and_one_uses_strimzi_and_an_hsm() -> None:
    assert len(VALUES) >= 3
    assert any(
        values_of(v).get("strimzi", {}).get("topics", {}).get("enabled")
        and values_of(v).get("seal", {}).get("mode") == "pkcs11"
        for v in VALUES
    )


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_passes_with_each_values_file(tools: dict[str, Path], values: str) -> None:
    done = helm(
        tools,
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "-f",
        str(VALUES_DIR / f"{values}.yaml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def kubernetes_schemas(rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubernetes-validate's schemas for KUBE_VERSION, with their references made relative for kubeconform.

    They name their shared definitions by an absolute id (/api/_definitions.json); kubeconform
    reads a schema from a file and resolves references against that file, so a copy refers to
    the definitions beside it. Only the kinds the chart renders are copied, named as kubeconform
    looks for them (kind-group-version.json; a kind without a schema there is an error).
    """
    source = (
        Path(kubernetes_validate.utils.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBE_VERSION}-local-strict"
    )
    folder = tmp_path_factory.mktemp("kubernetes-schemas")
    names = {"_definitions.json"}
    for path in rendered.values():
        for o in objects(path):
            group, _, version = o["apiVersion"].rpartition("/")
            names.add("-".join(filter(None, (o["kind"].lower(), group.split(".")[0], version))) + ".json")
    for path in (source / name for name in sorted(names)):
        if not path.is_file():
            continue  # a custom resource: its schema is in deploy/schemas
        schema = json.loads(path.read_text())
        schema.pop("$id", None)
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
        (folder / path.name).write_text(text)
    return folder


def test_every_rendered_object_is_valid_against_its_schema(
    tools: dict[str, Path], rendered: dict[str, Path], kubernetes_schemas: Path
) -> None:
    done = subprocess.run(
        [
            str(tools["kubeconform"]),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBE_VERSION,
            "-schema-location",
            f"{kubernetes_schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            "-schema-location",
            f"{CRD_SCHEMAS}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            *map(str, rendered.values()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    bad = [r for r in report["resources"] if r["status"] != "statusValid"]
    assert done.returncode == 0 and not bad, json.dumps(bad, indent=1)[:4000] or done.stderr
    summary = report["summary"]
    assert summary["valid"] == sum(len(objects(p)) for p in rendered.values())
    assert summary["skipped"] == 0  # every kind had its schema


@pytest.mark.parametrize("values", VALUES)
def test_each_service_has_one_deployment_started_by_its_own_entry_point(
    rendered: dict[str, Path], values: str
) -> None:
    deployments = by_kind(rendered[values], "Deployment")
    assert sorted(
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments.values()
    ) == sorted(SERVICES)
    entry = containerfile_entrypoint()
    for deployment in deployments.values():
        name = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        # the image's own entry point, given the service as its argument: `python -m services NAME`
        assert container["command"] == entry == ["python", "-m", "services"]
        assert container["args"] == [name] and name in SERVICES


@pytest.mark.parametrize("values", VALUES)
def test_every_container_runs_the_one_image_named_by_the_values(
    rendered: dict[str, Path], values: str
) -> None:
    image = values_of(values)["image"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    expected = (
        f"{image['repository']}@{image['digest']}"
        if image.get("digest")
        else f"{image['repository']}:{image.get('tag') or chart['appVersion']}"
    )
    for deployment in by_kind(rendered[values], "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert {c["image"] for c in pod["containers"] + pod.get("initContainers", [])} == {expected}


def test_the_charts_app_version_is_the_projects_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = (PROJECT_ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', project, re.MULTILINE)
    assert version and chart["appVersion"] == version.group(1)


def containerfile_entrypoint() -> list[str]:
    found = re.search(r"^ENTRYPOINT (\[.*\])\s*$", (PROJECT_ROOT / "Containerfile").read_text(), re.MULTILINE)
    assert found, "the Containerfile has no ENTRYPOINT in exec form"
    return list(json.loads(found.group(1)))


def test_the_image_runs_as_the_user_the_pods_run_as_with_nothing_to_write_outside_tmp() -> None:
    text = (PROJECT_ROOT / "Containerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)\s*$", text, re.MULTILINE)
    chart = yaml.safe_load((CHART / "values.yaml").read_text())["securityContext"]
    assert user and (int(user.group(1)), int(user.group(2))) == (chart["runAsUser"], chart["runAsGroup"])
    assert "COC_STATE_DIR=/tmp/" in text and "PYTHONDONTWRITEBYTECODE=1" in text


@pytest.mark.parametrize("values", VALUES)
def test_pods_are_non_root_read_only_and_probed_on_healthz_at_their_port(
    rendered: dict[str, Path], values: str
) -> None:
    services = {s["metadata"]["name"]: s for s in by_kind(rendered[values], "Service").values()}
    for deployment in by_kind(rendered[values], "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == [
                "ALL"
            ]
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        (container,) = pod["containers"]
        name = container["args"][0]
        port = container["ports"][0]["containerPort"]
        assert port == 8080 + SERVICE_PORT_OFFSETS[name]  # the port the service itself takes (COC_PORT_BASE)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert services[deployment["metadata"]["name"]]["spec"]["ports"][0]["port"] == port
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


@pytest.mark.parametrize("values", VALUES)
def test_each_service_has_a_disruption_budget_and_a_network_policy_selecting_its_pods(
    rendered: dict[str, Path], values: str
) -> None:
    deployments = by_kind(rendered[values], "Deployment")
    budgets = by_kind(rendered[values], "PodDisruptionBudget")
    policies = by_kind(rendered[values], "NetworkPolicy")
    assert set(budgets) == set(policies) == set(deployments)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for selector in (
            budgets[name]["spec"]["selector"]["matchLabels"],
            policies[name]["spec"]["podSelector"]["matchLabels"],
        ):
            assert selector.items() <= labels.items()


def test_only_the_callers_of_a_service_reach_it_besides_ingress_and_prometheus(
    rendered: dict[str, Path],
) -> None:
    policies = by_kind(rendered["production"], "NetworkPolicy")
    callers = {
        name: [
            rule["from"][0]["podSelector"]["matchExpressions"][0]["values"]
            for rule in policies[f"ecoc-{name}"]["spec"]["ingress"]
            if "podSelector" in rule["from"][0]
        ]
        for name in SERVICES
    }
    # the workspace reads status, archive, validation and signing's own seal; delivery and archive ask each other
    assert callers["status"] == [["workspace"]] and callers["validation"] == [["workspace"]]
    assert callers["archive"] == [["workspace", "delivery"]] and callers["delivery"] == [["archive"]]
    assert callers["signing"] == [["workspace"]] and callers["render"] == []


def test_signing_is_scaled_by_an_hpa_up_to_the_partitions_of_its_topic(rendered: dict[str, Path]) -> None:
    values = values_of("production")
    (hpa,) = by_kind(rendered["production"], "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ecoc-signing",
    }
    assert hpa["spec"]["maxReplicas"] <= values["kafka"]["topics"]["partitions"]
    assert "replicas" not in by_kind(rendered["production"], "Deployment")["ecoc-signing"]["spec"]


def test_more_signing_instances_than_partitions_are_refused(tools: dict[str, Path]) -> None:
    done = template(tools, "production", "--set", "autoscaling.signing.maxReplicas=13")
    assert done.returncode != 0 and "more than kafka.topics.partitions (12)" in done.stderr


def test_a_mongodb_url_carrying_a_password_is_refused(tools: dict[str, Path]) -> None:
    done = template(tools, "minimal", "--set", "mongo.url=mongodb://ecoc:secret@mongo:27017")
    assert done.returncode != 0 and "mongo.url: carries a password" in done.stderr


def settings_fields(service: str) -> set[str]:
    """The COC_ variables a service reads: its settings class's fields, and the tokens (shared.auth)."""
    import importlib
    import inspect

    module = importlib.import_module(f"services.{service}.settings")
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings) and c.__module__ == module.__name__
    ]
    fields = set().union(*(c.model_fields for c in classes)) if classes else set(ServiceSettings.model_fields)
    return {f"COC_{f.upper()}" for f in fields} | {env_name(role) for role in Role}


def environment(path: Path, deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (source,) = container["envFrom"]
    config = by_kind(path, "ConfigMap")[source["configMapRef"]["name"]]["data"]
    return {**config, **{e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}}


@pytest.mark.parametrize("values", VALUES)
def test_every_coc_setting_the_chart_gives_is_one_a_service_reads(
    rendered: dict[str, Path], values: str
) -> None:
    read_by_any = set().union(*(settings_fields(name) for name in SERVICES))
    config = by_kind(rendered[values], "ConfigMap")["ecoc-settings"]["data"]
    assert set(config) - read_by_any == set(), f"{values}: no service reads these"
    for deployment in by_kind(rendered[values], "Deployment").values():
        name = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        own = {e["name"] for e in container["env"] if e["name"].startswith("COC_")}
        assert own - settings_fields(name) == set(), f"{values}: {name} does not read these"


@pytest.mark.parametrize("values", VALUES)
def test_the_services_reach_each_other_through_their_kubernetes_services(
    rendered: dict[str, Path], values: str
) -> None:
    config = by_kind(rendered[values], "ConfigMap")["ecoc-settings"]["data"]
    settings = ServiceSettings(
        http_host=config["COC_HTTP_HOST"],
        port_base=int(config["COC_PORT_BASE"]),
        service_urls=json.loads(config["COC_SERVICE_URLS"]),
    )
    services = by_kind(rendered[values], "Service")
    for name in SERVICES:
        port = services[f"ecoc-{name}"]["spec"]["ports"][0]["port"]
        assert settings.url_of(name) == f"http://ecoc-{name}:{port}"


def test_kafka_credentials_and_the_seal_come_from_secrets_as_files(rendered: dict[str, Path]) -> None:
    path = rendered["production"]
    deployments = by_kind(path, "Deployment")
    for deployment in deployments.values():
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        env = environment(path, deployment)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        # each service is its own Kafka principal, with the password the User Operator keeps for it
        assert (
            env["COC_KAFKA_USERNAME"] == f"ecoc-{service}"
            and env["COC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        )
        assert volumes["kafka-credentials"]["secret"]["secretName"] == f"ecoc-{service}"
        assert env["COC_KAFKA_PASSWORD_FILE"] == "/var/run/ecoc/kafka/password"
        assert env["COC_MONGO_PASSWORD_FILE"] == "/var/run/ecoc/mongo/password"
        assert "@" not in env["COC_MONGO_URL"]
        assert ("seal-source" in volumes) == (service == "signing")  # nothing else holds the seal
    signing = environment(path, deployments["ecoc-signing"])
    assert signing["COC_SEAL_PKCS11_PIN_FILE"] == "/var/run/ecoc/seal/pin" and "COC_SEAL_KEY" not in signing
    assert signing["COC_SEAL_PKCS11_MODULE"].startswith("/opt/hsm/")


def test_no_values_file_holds_a_secret() -> None:
    for values in VALUES:
        given = values_of(values)
        seal, mongo, kafka = given.get("seal", {}), given.get("mongo", {}), given.get("kafka", {})
        held = [
            seal.get("certificate", {}).get("value"),
            seal.get("file", {}).get("key"),
            seal.get("file", {}).get("keyPassword"),
            seal.get("pkcs11", {}).get("pin", {}).get("value"),
            mongo.get("password", {}).get("value"),
            kafka.get("sasl", {}).get("passwords"),
        ]
        assert not any(held), f"{values}.yaml holds a secret: name an existing Secret or use --set-file"
        assert "PRIVATE KEY" not in (VALUES_DIR / f"{values}.yaml").read_text()


def test_strimzi_topics_have_the_partitions_compaction_and_retention_of_the_local_cluster(
    rendered: dict[str, Path],
) -> None:
    from deploy.helm.topology import retention_ms
    from deploy.local.cluster import MIN_INSYNC, REPLICATION
    from shared.kafka import wanted_topics

    values = values_of("production")
    settings = ServiceSettings(
        topic_partitions=values["kafka"]["topics"]["partitions"],
        topic_replication=REPLICATION,
        topic_min_insync=MIN_INSYNC,
    )
    made = {t.name: t for t in wanted_topics(settings)}
    kafka_topics = by_kind(rendered["production"], "KafkaTopic")
    assert set(kafka_topics) == set(made)
    for name, resource in kafka_topics.items():
        spec = resource["spec"]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == values["strimzi"]["cluster"]
        assert (spec["topicName"], spec["partitions"], spec["replicas"]) == (
            name,
            made[name].num_partitions,
            made[name].replication_factor,
        )
        expected = dict(made[name].topic_configs)
        if expected.get("cleanup.policy") != "compact":
            expected["retention.ms"] = str(retention_ms())
        assert spec["config"] == expected


def test_strimzi_users_have_exactly_the_acls_the_local_cluster_applies(rendered: dict[str, Path]) -> None:
    from deploy.local.cluster import GROUP, READ, TOPIC, WRITE, acl_entries, principals

    kinds = {"topic": TOPIC, "group": GROUP}
    operations = {"Read": READ, "Write": WRITE}
    granted = set()
    for name, user in by_kind(rendered["production"], "KafkaUser").items():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        principal = "User:" + name.removeprefix(
            values_of("production").get("kafka", {}).get("userPrefix", "ecoc-")
        )
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["patternType"] == "literal"
            for operation in acl["operations"]:
                granted.add(
                    (
                        principal,
                        kinds[acl["resource"]["type"]],
                        acl["resource"]["name"],
                        operations[operation],
                    )
                )
    expected = {(a.principal, a.resource_type, a.resource, a.operation) for a in acl_entries(principals())}
    assert granted == expected


def test_the_prometheus_rule_and_the_dashboard_are_those_of_deploy_monitoring(
    rendered: dict[str, Path],
) -> None:
    monitoring = PROJECT_ROOT / "deploy" / "monitoring"
    (rule,) = by_kind(rendered["production"], "PrometheusRule").values()
    assert rule["spec"]["groups"] == yaml.safe_load((monitoring / "alerts.yml").read_text())["groups"]
    dashboard = by_kind(rendered["production"], "ConfigMap")["ecoc-dashboard"]
    assert json.loads(dashboard["data"]["ecoc.json"]) == json.loads(
        (monitoring / "grafana-ecoc.json").read_text()
    )


def test_the_scrape_job_gives_the_job_and_service_labels_the_alert_rules_use(
    rendered: dict[str, Path],
) -> None:
    alerts = yaml.safe_load((PROJECT_ROOT / "deploy" / "monitoring" / "alerts.yml").read_text())
    rules = {r["alert"]: r for group in alerts["groups"] for r in group["rules"]}
    job = re.search(r'up\{job="([^"]+)"\}', rules["CocServiceDown"]["expr"])
    secret = by_kind(rendered["production"], "Secret")["ecoc-scrape-config"]
    (scrape,) = yaml.safe_load(secret["stringData"]["prometheus-additional.yaml"])
    assert job and scrape["job_name"] == job.group(1)
    assert {r.get("target_label") for r in scrape["relabel_configs"]} >= {"service"}
    (selector,) = scrape["kubernetes_sd_configs"][0]["selectors"]
    wanted = dict(pair.split("=") for pair in selector["label"].split(","))
    for deployment in by_kind(rendered["production"], "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert wanted.items() <= labels.items()
        assert (
            labels["app.kubernetes.io/component"]
            == deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
        )


def test_values_the_chart_cannot_use_are_refused_naming_each(tools: dict[str, Path]) -> None:
    done = template(
        tools,
        "minimal",
        "--set",
        "services.signer.port=8084",
        "--set",
        "kafka.securityProtocol=SASL",
        "--set",
        "settings.PLANT_TIMEZONE=UTC",
    )
    assert done.returncode != 0
    for named in ("'signer' not allowed", "/kafka/securityProtocol", "'PLANT_TIMEZONE' does not match"):
        assert named in done.stderr
