"""The eight services as processes of the local stack, after Kafka and FerretDB.

Each runs as ``python -m services NAME --port P`` (``services.launch``) with the stack's settings in its
environment: the development seal (made once into the state folder) for signing,
the generated bearer tokens for every service, and the key that signs the
workspace's session cookies. With ``--replicas N`` each service runs N times
(``intake``, ``intake-2``, ...), each instance on its own port, all instances of a
stage in one consumer group; clients keep calling the first instance.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from deploy.local.cluster import service_kafka_env
from deploy.local.health import http_healthy, http_problem
from deploy.local.layout import ProcessSpec
from deploy.local.settings import MAX_REPLICAS, StackSettings
from shared.settings import SERVICE_PORT_OFFSETS, ServiceSettings

# intake, validation, render, signing, delivery, archive, status, workspace
SERVICES = tuple(SERVICE_PORT_OFFSETS)
# The files of devkit.keys; the modules that make keys and tokens are loaded only when needed,
# so `coc stack status` and `coc stack down` stay quick to start.
KEY_FILE, CERT_FILE = "seal.key", "seal.crt"
# `coc stack up --replicas N`: instance k of each service listens on its port + 10 * (k - 1).
REPLICA_PORT_STEP = 10


def seal_paths(settings: ServiceSettings) -> tuple[Path, Path]:
    """The development seal of the local stack: key and certificate in the state folder.

    In HSM mode with the development token the certificate is the token's (there is no key file).
    """
    keys = settings.state_dir / "keys"
    token_dir = hsm_token_dir(settings)
    return keys / KEY_FILE, (token_dir / CERT_FILE if token_dir else keys / CERT_FILE)


def hsm_token_dir(settings: ServiceSettings) -> Path | None:
    """HSM mode (COC_SEAL_PKCS11_MODULE set): the development token's folder, or None for a token the
    settings name (COC_SEAL_PKCS11_TOKEN) or for the file seal."""
    if not os.environ.get("COC_SEAL_PKCS11_MODULE") or os.environ.get("COC_SEAL_PKCS11_TOKEN"):
        return None
    return settings.state_dir / "hsm"


def ensure_dev_seal(settings: ServiceSettings) -> None:
    """A development seal for the local stack, once; never used when COC_SEAL_KEY is set.

    In HSM mode a development SoftHSM2 token (``devkit.hsm``) instead, and no key file at all.
    """
    if os.environ.get("COC_SEAL_PKCS11_MODULE"):
        token_dir = hsm_token_dir(settings)
        if token_dir is not None and not (token_dir / "seal.crt").exists():
            from devkit.hsm import make_dev_token

            make_dev_token(token_dir, Path(os.environ["COC_SEAL_PKCS11_MODULE"]))
        return
    if os.environ.get("COC_SEAL_KEY"):
        return
    key, _cert = seal_paths(settings)
    if not key.exists():
        from devkit.keys import write_dev_seal

        write_dev_seal(key.parent)


def workspace_secret(settings: ServiceSettings) -> str:
    """The key of the workspace's session cookies, made once into the state folder (owner-only)."""
    if os.environ.get("COC_WORKSPACE_SECRET"):
        return os.environ["COC_WORKSPACE_SECRET"]
    path = settings.state_dir / "workspace.secret"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def service_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment of a service process: the tokens, the seal and unbuffered output."""
    from shared.auth import load_tokens

    env = {f"COC_TOKEN_{role.name}": token for role, token in load_tokens(settings, dict(os.environ)).items()}
    key, cert = seal_paths(settings)
    if os.environ.get("COC_SEAL_PKCS11_MODULE"):
        env.update(hsm_env(settings))
    else:
        env["COC_SEAL_KEY"] = os.environ.get("COC_SEAL_KEY", str(key))
        env["COC_SEAL_CERT"] = os.environ.get("COC_SEAL_CERT", str(cert))
    env["COC_WORKSPACE_SECRET"] = workspace_secret(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def hsm_env(settings: ServiceSettings) -> dict[str, str]:
    """HSM mode: the development token's settings (the module as given), or the settings as they are."""
    token_dir = hsm_token_dir(settings)
    if token_dir is None:
        return {}
    from devkit.hsm import DevToken

    return DevToken(token_dir, Path(os.environ["COC_SEAL_PKCS11_MODULE"])).env()


def instance_name(service: str, instance: int) -> str:
    """The stack's name of a service's instance: ``intake`` for the first, ``intake-2`` for the second."""
    return service if instance == 1 else f"{service}-{instance}"


def instance_port(settings: ServiceSettings, service: str, instance: int) -> int:
    """Instance k of a service listens on the service's port + 10 * (k - 1) (8081-8088, 8091-8098, ...)."""
    return settings.port_of(service) + REPLICA_PORT_STEP * (instance - 1)


def instance_url(settings: ServiceSettings, service: str, instance: int) -> str:
    return f"http://{settings.http_host}:{instance_port(settings, service, instance)}"


def replicas_file(settings: ServiceSettings) -> Path:
    return settings.state_dir / "replicas"


def remember_replicas(settings: ServiceSettings, replicas: int) -> None:
    """Write down how many instances ``up`` runs, so a later ``status`` or ``up`` knows them all."""
    path = replicas_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{replicas}\n")


def forget_replicas(settings: ServiceSettings) -> None:
    replicas_file(settings).unlink(missing_ok=True)


def replica_count(settings: StackSettings, requested: int | None = None) -> int:
    """The instances per service: ``--replicas``, else COC_REPLICAS, else what the last ``up`` ran, else 1."""
    if requested is not None:
        return requested
    if "replicas" in settings.model_fields_set:
        return settings.replicas
    try:
        remembered = int(replicas_file(settings).read_text().strip())
    except (OSError, ValueError):
        return settings.replicas
    return remembered if 1 <= remembered <= MAX_REPLICAS else settings.replicas


def service_specs(settings: ServiceSettings | None = None, replicas: int = 1) -> list[ProcessSpec]:
    """The specs of every service's instances, in pipeline order, after preparing tokens and the dev seal.

    All the first instances come first (the addresses every client uses), then the second ones, and so on.
    """
    from shared.auth import ensure_tokens

    settings = settings or ServiceSettings()
    ensure_tokens(settings)
    ensure_dev_seal(settings)
    env = service_env(settings)
    return [
        _instance_spec(settings, name, instance, env)
        for instance in range(1, replicas + 1)
        for name in SERVICES
    ]


def _instance_spec(settings: ServiceSettings, name: str, instance: int, env: dict[str, str]) -> ProcessSpec:
    port = instance_port(settings, name, instance)
    health_url = f"{instance_url(settings, name, instance)}/healthz"
    return ProcessSpec(
        name=instance_name(name, instance),
        argv=(sys.executable, "-m", "services", name, "--port", str(port)),
        addresses=((settings.http_host, port),),
        health=partial(http_healthy, health_url),
        problem=partial(http_problem, health_url),
        env={**env, **service_kafka_env(settings, name)},
        start_timeout=60,
    )
