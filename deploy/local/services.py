"""The eight services as processes of the local stack, after Kafka and FerretDB.

Each runs as ``python -m services NAME`` (``services.launch``) with the stack's settings in its
environment: the development seal (made once into the state folder) for signing,
the generated bearer tokens for every service, and the key that signs the
workspace's session cookies.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from deploy.local.health import http_healthy, http_problem
from deploy.local.layout import ProcessSpec
from shared.settings import SERVICE_PORT_OFFSETS, ServiceSettings

# intake, validation, render, signing, delivery, archive, status, workspace
SERVICES = tuple(SERVICE_PORT_OFFSETS)
# The files of devkit.keys; the modules that make keys and tokens are loaded only when needed,
# so `coc stack status` and `coc stack down` stay quick to start.
KEY_FILE, CERT_FILE = "seal.key", "seal.crt"


def seal_paths(settings: ServiceSettings) -> tuple[Path, Path]:
    """The development seal of the local stack: key and certificate in the state folder."""
    keys = settings.state_dir / "keys"
    return keys / KEY_FILE, keys / CERT_FILE


def ensure_dev_seal(settings: ServiceSettings) -> None:
    """A development seal for the local stack, once; never used when COC_SEAL_KEY is set."""
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
    env["COC_SEAL_KEY"] = os.environ.get("COC_SEAL_KEY", str(key))
    env["COC_SEAL_CERT"] = os.environ.get("COC_SEAL_CERT", str(cert))
    env["COC_WORKSPACE_SECRET"] = workspace_secret(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_specs(settings: ServiceSettings | None = None) -> list[ProcessSpec]:
    """One spec per service, in pipeline order, after preparing tokens and the dev seal."""
    from shared.auth import ensure_tokens

    settings = settings or ServiceSettings()
    ensure_tokens(settings)
    ensure_dev_seal(settings)
    env = service_env(settings)
    host = settings.http_host
    return [
        ProcessSpec(
            name=name,
            argv=(sys.executable, "-m", "services", name),
            addresses=((host, settings.port_of(name)),),
            health=partial(http_healthy, f"{settings.url_of(name)}/healthz"),
            problem=partial(http_problem, f"{settings.url_of(name)}/healthz"),
            env=env,
            start_timeout=60,
        )
        for name in SERVICES
    ]
