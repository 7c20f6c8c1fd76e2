"""``coc stack up --brokers 3``: three KRaft nodes, TLS from a local CA, SCRAM users and the ACLs of ``deploy/kafka``.

Each node is broker and controller (a quorum of three), with its own ports, data
and log folder. Node k (1, 2, 3) listens for clients (SASL_SSL, SCRAM-SHA-512) on
the Kafka port + 100 (k - 1) (9092, 9192, 9292), for the other brokers (TLS with
client certificates) on that port + 2, and for the quorum on the controller port
+ 100 (k - 1) (9093, 9193, 9293). The stack makes, once, into
``<state>/kafka-cluster/``: a CA, the brokers' key and certificate, a password per
principal (owner-only files, never logged) and ``client.json``, which tells the
tools how to reach the cluster as its admin (``shared.kafka.local_cluster``).
Once the nodes answer, it makes the topics (replication 3, min in-sync 2) and
applies the ACLs of ``deploy/kafka/acls.json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import secrets
import string
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from deploy.local.layout import DEPLOY_DIR, ProcessSpec, StackError, StackPaths
from deploy.local.settings import StackSettings
from shared.settings import PROJECT_ROOT, CocSettings, ServiceSettings

ACL_FILE = PROJECT_ROOT / "deploy" / "kafka" / "acls.json"
ADMIN = "admin"  # the super user of `coc stack`, the tools and the tests
BROKER_CN = "broker"  # the brokers' certificate: principal User:broker
PORT_STEP = 100
INTERNAL_OFFSET = 2
REPLICATION, MIN_INSYNC = 3, 2
MECHANISM = "SCRAM-SHA-512"
CERT_DAYS = 825
BROKERS_FILE = "brokers"  # in the state folder: how many brokers the last `up` ran
# In the state folder: how the tools reach the cluster (read by shared.kafka.local_cluster, which names it too).
CLIENT_FILE = Path("kafka-cluster") / "client.json"


@dataclass(frozen=True)
class Node:
    """One KRaft node of the cluster and its three listeners."""

    node_id: int
    host: str
    client_port: int
    internal_port: int
    controller_port: int

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"

    @property
    def client_address(self) -> str:
        return f"{self.host}:{self.client_port}"


@dataclass(frozen=True)
class ClusterPaths:
    """The cluster's files under the state folder."""

    paths: StackPaths

    @property
    def root(self) -> Path:
        return self.paths.state / "kafka-cluster"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def keystore(self) -> Path:
        return self.root / "broker.pem"

    @property
    def client_file(self) -> Path:
        return self.paths.state / CLIENT_FILE

    @property
    def brokers_file(self) -> Path:
        return self.paths.state / BROKERS_FILE

    def password(self, principal: str) -> Path:
        return self.root / "secrets" / f"{principal}.password"

    def config(self, node: Node) -> Path:
        return self.root / f"server-{node.node_id}.properties"

    def data(self, node: Node) -> Path:
        return self.paths.state / f"kafka-data-{node.node_id}"

    def logs(self, node: Node) -> Path:
        return self.paths.logs / node.name


def nodes(settings: StackSettings, count: int) -> list[Node]:
    host, port = settings.kafka_host_port
    return [
        Node(
            k + 1,
            host,
            port + PORT_STEP * k,
            port + PORT_STEP * k + INTERNAL_OFFSET,
            settings.kafka_controller_port + PORT_STEP * k,
        )
        for k in range(count)
    ]


# --- the mode: one broker or three ------------------------------------------------------------


def broker_count(settings: ServiceSettings, requested: int | None = None) -> int:
    """``--brokers``, else COC_STACK_BROKERS, else what the last ``up`` ran, else 1."""
    default = settings.stack_brokers if isinstance(settings, StackSettings) else 1
    if requested is not None:
        return requested
    if "stack_brokers" in settings.model_fields_set:
        return default
    try:
        remembered = int((settings.state_dir / BROKERS_FILE).read_text().strip())
    except (OSError, ValueError):
        return default
    return remembered if remembered in (1, REPLICATION) else default


def client_bootstrap(settings: CocSettings) -> str:
    """The client listeners of the three nodes: the Kafka port + 100 (k - 1)."""
    host, port = settings.kafka_host_port
    return ",".join(f"{host}:{port + PORT_STEP * k}" for k in range(REPLICATION))


def remember_brokers(settings: StackSettings, count: int) -> None:
    """Write the mode down for ``status``, ``down`` and later ``up``s; refuse to switch a running stack."""
    files = ClusterPaths(StackPaths.of(settings))
    running = broker_count(settings)
    if running != count and _any_recorded(files.paths, _kafka_names(running)):
        raise StackError(
            f"kafka: the stack runs {running} broker(s); `coc stack down` before `up --brokers {count}`"
        )
    files.brokers_file.parent.mkdir(parents=True, exist_ok=True)
    files.brokers_file.write_text(f"{count}\n")
    if count == 1:
        files.client_file.unlink(missing_ok=True)


def forget_brokers(settings: StackSettings) -> None:
    files = ClusterPaths(StackPaths.of(settings))
    files.brokers_file.unlink(missing_ok=True)
    files.client_file.unlink(missing_ok=True)


def _kafka_names(count: int) -> list[str]:
    return ["kafka"] if count == 1 else [f"kafka-{k}" for k in range(1, count + 1)]


def _any_recorded(paths: StackPaths, names: Sequence[str]) -> bool:
    return any(paths.pid_file(name).is_file() for name in names)


# --- the processes ------------------------------------------------------------------------------


# A node started again after a SIGKILL recovers each of its partitions' logs before it answers
# (132 here); on the loaded 2-core machine that took past the stack's usual 120 s.
NODE_START_TIMEOUT = 300.0


def cluster_specs(settings: StackSettings, paths: StackPaths, count: int) -> list[ProcessSpec]:
    """The nodes in start order: the first ones are not waited for (a quorum needs two), the last is."""
    from deploy.local.health import kafka_healthy
    from deploy.local.infra import KAFKA_JVM_OPTIONS, java

    files = ClusterPaths(paths)
    members = nodes(settings, count)
    specs = []
    for node in members:
        argv = (
            java(),
            *KAFKA_JVM_OPTIONS,
            f"-Dkafka.logs.dir={files.logs(node)}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
            "-cp",
            f"{paths.kafka_libs}/*",
            "kafka.Kafka",
            str(files.config(node)),
        )
        last = node is members[-1]
        specs.append(
            ProcessSpec(
                name=node.name,
                argv=argv,
                addresses=(
                    (node.host, node.client_port),
                    (node.host, node.internal_port),
                    (node.host, node.controller_port),
                ),
                health=partial(kafka_healthy, node.client_address, partial(admin_options, settings, node)),
                prepare=partial(prepare_node, settings, files, members, node),
                logs=(files.logs(node) / "server.log",),
                wait=last,
                ready=partial(configure, settings) if last else None,
                stop_together=True,
                start_timeout=NODE_START_TIMEOUT,
            )
        )
    return specs


def prepare_node(settings: StackSettings, files: ClusterPaths, members: Sequence[Node], node: Node) -> None:
    """The CA, keys and passwords once; the node's configuration; its storage formatted the first time."""
    ensure_security(settings, files, members)
    voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in members)
    files.root.mkdir(parents=True, exist_ok=True)
    template = string.Template((DEPLOY_DIR / "cluster.properties.template").read_text())
    files.config(node).write_text(
        template.substitute(
            node_id=node.node_id,
            voters=voters,
            host=node.host,
            client_port=node.client_port,
            internal_port=node.internal_port,
            controller_port=node.controller_port,
            keystore=files.keystore,
            ca_file=files.ca_cert,
            admin=ADMIN,
            data_dir=files.data(node),
        )
    )
    if not (files.data(node) / "meta.properties").is_file():
        _format(settings, files, node)


def _format(settings: StackSettings, files: ClusterPaths, node: Node) -> None:
    """Format the node's storage with the SCRAM users in its first metadata.

    The passwords go to Kafka's StorageTool in a Java argument file (owner-only,
    removed at once), so they never appear on a command line other users can read.
    """
    from deploy.local.infra import cluster_id, java

    paths = files.paths
    users = [ADMIN, *principals()]
    arguments = [
        f"-Dkafka.logs.dir={files.logs(node)}", f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
        "-cp", f"{paths.kafka_libs}/*", "kafka.tools.StorageTool", "format",
        "-t", cluster_id(files.root), "-c", str(files.config(node)),
    ]  # fmt: skip
    for user in users:
        password = files.password(user).read_text().strip()
        arguments += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    argfile = files.root / f".format-{node.node_id}.args"
    _write_private(argfile, "\n".join(f'"{a}"' for a in arguments) + "\n")
    try:
        result = subprocess.run(
            [java(), "-Xmx256m", f"@{argfile}"], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise StackError(f"kafka: cannot run java (Java 17 or newer is needed): {exc}") from exc
    finally:
        argfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise StackError(
            f"{node.name}: formatting {files.data(node)} failed:\n{result.stdout}{result.stderr}"
        )


# --- keys, certificates and passwords ----------------------------------------------------------------


def principals() -> dict[str, dict[str, list[str]]]:
    """The ACL data: principal -> its topics read, topics written and consumer groups."""
    return dict(json.loads(ACL_FILE.read_text())["principals"])


def ensure_security(settings: StackSettings, files: ClusterPaths, members: Sequence[Node]) -> None:
    """Make what is missing: the CA, the brokers' keystore, a password per principal, client.json."""
    files.root.mkdir(parents=True, exist_ok=True)
    (files.root / "secrets").mkdir(mode=0o700, exist_ok=True)
    if not files.keystore.is_file():
        _make_tls(files, {n.host for n in members})
    for user in [ADMIN, *principals()]:
        if not files.password(user).is_file():
            _write_private(files.password(user), secrets.token_hex(24) + "\n")
    client = {
        "brokers": len(members),
        "bootstrap": ",".join(n.client_address for n in members),
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": MECHANISM,
        "username": ADMIN,
        "password_file": str(files.password(ADMIN)),
        "ca_file": str(files.ca_cert),
        "topic_replication": REPLICATION,
        "topic_min_insync": MIN_INSYNC,
    }
    files.client_file.write_text(json.dumps(client, indent=2) + "\n")


def _write_private(path: Path, text: str) -> None:
    """An owner-only file: made with mode 0600 before anything is written into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as sink:
        sink.write(text)


def _make_tls(files: ClusterPaths, hosts: set[str]) -> None:
    """A CA and the brokers' key and certificate (server and client: the brokers are each other's clients)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coc local Kafka CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in sorted(hosts | {"127.0.0.1"}):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write_private(files.ca_key, ca_key.private_bytes(pem, pkcs8, plain).decode())
    files.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    _write_private(
        files.keystore,
        key.private_bytes(pem, pkcs8, plain).decode()
        + cert.public_bytes(pem).decode()
        + ca_cert.public_bytes(pem).decode(),
    )


def admin_options(settings: StackSettings, node: Node | None = None) -> dict[str, Any]:
    """aiokafka options of the admin principal, to one node or (None) to the cluster."""
    from shared.kafka import client_options

    files = ClusterPaths(StackPaths.of(settings))
    bootstrap = node.client_address if node else client_bootstrap(settings)
    return client_options(
        settings.model_copy(
            update={
                "kafka_bootstrap": bootstrap,
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": MECHANISM,
                "kafka_username": ADMIN,
                "kafka_password_file": files.password(ADMIN),
                "kafka_ca_file": files.ca_cert,
            }
        )
    )


def service_kafka_env(settings: ServiceSettings, service: str) -> dict[str, str]:
    """A service's Kafka settings in the cluster mode: its own principal, password file and the CA."""
    if broker_count(settings) == 1:
        return {}
    root = settings.state_dir.resolve() / "kafka-cluster"
    return {
        "COC_KAFKA_BOOTSTRAP": client_bootstrap(settings),
        "COC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "COC_KAFKA_SASL_MECHANISM": MECHANISM,
        "COC_KAFKA_USERNAME": service,
        "COC_KAFKA_PASSWORD_FILE": str(root / "secrets" / f"{service}.password"),
        "COC_KAFKA_CA_FILE": str(root / "ca.crt"),
        "COC_KAFKA_MAKE_TOPICS": "false",
        "COC_TOPIC_REPLICATION": str(REPLICATION),
        "COC_TOPIC_MIN_INSYNC": str(MIN_INSYNC),
    }


# --- after the nodes answer: topics and ACLs ------------------------------------------------------


def configure(settings: StackSettings) -> None:
    """Make the topics (replication 3, min in-sync 2) and apply the ACLs; both idempotent."""
    from deploy.local.health import run_coroutine

    run_coroutine(lambda: _configure(settings))


async def _configure(settings: StackSettings) -> None:
    from shared.kafka import ensure_topics

    cluster = settings.model_copy(
        update={"topic_replication": REPLICATION, "topic_min_insync": MIN_INSYNC, "kafka_make_topics": True}
    )
    await ensure_topics(_as_admin(cluster), leaders=[node.node_id for node in nodes(settings, REPLICATION)])
    await apply_acls(admin_options(settings), acl_entries(principals()))


def _as_admin(settings: StackSettings) -> StackSettings:
    files = ClusterPaths(StackPaths.of(settings))
    return settings.model_copy(
        update={
            "kafka_bootstrap": client_bootstrap(settings),
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_username": ADMIN,
            "kafka_password_file": files.password(ADMIN),
            "kafka_ca_file": files.ca_cert,
        }
    )


# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
TOPIC, GROUP = 2, 3
READ, WRITE = 3, 4
ALLOW, LITERAL = 3, 3


@dataclass(frozen=True)
class Acl:
    principal: str
    resource_type: int
    resource: str
    operation: int


def acl_entries(table: Mapping[str, Mapping[str, Sequence[str]]]) -> list[Acl]:
    """The ACLs one principal's entry stands for: READ on its topics read and its groups, WRITE on its topics written.

    READ and WRITE each imply DESCRIBE; since Kafka 3.0 WRITE on a topic is all an
    idempotent producer needs (KIP-679), so no cluster-wide right is given.
    """
    acls = []
    for name, entry in table.items():
        principal = f"User:{name}"
        acls += [Acl(principal, TOPIC, topic, READ) for topic in entry["read"]]
        acls += [Acl(principal, TOPIC, topic, WRITE) for topic in entry["write"]]
        acls += [Acl(principal, GROUP, group, READ) for group in entry["groups"]]
    return acls


async def apply_acls(options: Mapping[str, Any], acls: Sequence[Acl]) -> None:
    """Create each ACL (an existing one is left as it is); raise StackError naming a refused one.

    aiokafka's admin client has no call for ACLs: its client sends Kafka's CreateAcls request.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.admin import CreateAclsRequest

    client = AIOKafkaClient(**options)
    await client.bootstrap()
    try:
        for acl in acls:
            request = CreateAclsRequest(
                acl.resource_type, acl.resource, LITERAL, acl.principal, "*", acl.operation, ALLOW
            )
            response = await client.send(client.get_random_node(), request)
            for code, message in response.creation_responses:
                if code:
                    raise StackError(f"kafka: ACL {acl} refused: error {code} {message}")
    finally:
        await client.close()


# --- status -------------------------------------------------------------------------------------------


def active_controller(settings: StackSettings, count: int) -> int | None:
    """The quorum's leader, from the nodes' quorum-state files (the newest epoch wins); None when unknown."""
    files = ClusterPaths(StackPaths.of(settings))
    best: tuple[int, int] | None = None
    for node in nodes(settings, count):
        try:
            state = json.loads((files.data(node) / "__cluster_metadata-0" / "quorum-state").read_text())
            epoch, leader = int(state["leaderEpoch"]), int(state["leaderId"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if leader >= 0 and (best is None or epoch > best[0]):
            best = (epoch, leader)
    return best[1] if best else None


async def under_replicated(options: Mapping[str, Any]) -> list[str]:
    """``topic/partition`` of every partition with fewer in-sync replicas than replicas."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**options, request_timeout_ms=3000)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return sorted(
        f"{topic['topic']}/{part['partition']}"
        for topic in described
        for part in topic["partitions"]
        if len(part["isr"]) < len(part["replicas"])
    )


def cluster_lines(settings: StackSettings) -> list[str]:
    """What ``coc stack status`` adds in the cluster mode: the active controller, the under-replicated partitions."""
    from deploy.local.health import run_coroutine

    count = broker_count(settings)
    if count == 1:
        return []
    controller = active_controller(settings, count)
    lines = [
        f"kafka cluster: {count} brokers, active controller: {f'kafka-{controller}' if controller else 'unknown'}"
    ]
    try:
        lagging = run_coroutine(lambda: asyncio.wait_for(under_replicated(admin_options(settings)), 8))
    except Exception as exc:  # the cluster not answering is what status reports
        lines.append(f"kafka cluster: partitions not known ({type(exc).__name__})")
        return lines
    shown = ", ".join(lagging[:10]) + (f" and {len(lagging) - 10} more" if len(lagging) > 10 else "")
    lines.append(f"kafka cluster: under-replicated partitions: {shown or 'none'}")
    return lines
