"""The six services as processes of the local stack, after Kafka and FerretDB.

Each runs as ``python -m shared.cli service NAME`` with the stack's settings in
its environment: the development seal (made once by ``coc keys dev`` into the
state folder) for signing, and the generated bearer tokens for every service.
"""

from __future__ import annotations

import os
import sys
from functools import partial

from shared.auth import ensure_tokens, load_tokens
from shared.settings import ServiceSettings
from shared.stack import ProcessSpec, http_healthy

SERVICES = ("intake", "validation", "render", "signing", "archive", "status")


def seal_paths(settings: ServiceSettings) -> tuple[str, str]:
    keys = settings.state_dir / "keys"
    return str(keys / "seal.key"), str(keys / "seal.crt")


def ensure_dev_seal(settings: ServiceSettings) -> None:
    """A development seal for the local stack, once; never used when COC_SEAL_KEY is set."""
    if os.environ.get("COC_SEAL_KEY"):
        return
    key, _cert = seal_paths(settings)
    if not os.path.exists(key):
        from services.signing.keys import write_dev_seal

        write_dev_seal(settings.state_dir / "keys")


def service_env(settings: ServiceSettings) -> dict[str, str]:
    env = {f"COC_TOKEN_{role.name}": token for role, token in load_tokens(settings, dict(os.environ)).items()}
    key, cert = seal_paths(settings)
    env.setdefault("COC_SEAL_KEY", os.environ.get("COC_SEAL_KEY", key))
    env.setdefault("COC_SEAL_CERT", os.environ.get("COC_SEAL_CERT", cert))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_specs(settings: ServiceSettings | None = None) -> list[ProcessSpec]:
    """One spec per service, in pipeline order, after preparing tokens and the dev seal."""
    settings = settings or ServiceSettings()
    ensure_tokens(settings)
    ensure_dev_seal(settings)
    env = service_env(settings)
    host = settings.http_host
    return [
        ProcessSpec(
            name=name,
            argv=(sys.executable, "-m", "shared.cli", "service", name),
            addresses=((host, settings.port_of(name)),),
            health=partial(http_healthy, f"{settings.url_of(name)}/healthz"),
            env=env,
            start_timeout=60,
        )
        for name in SERVICES
    ]
