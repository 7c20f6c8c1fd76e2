"""``coc stack up --monitoring``: Prometheus (Debian's package) scraping every service of the local stack.

Its configuration is generated into the state folder at each start: one job,
``coc``, with a target per service instance labelled ``service`` (the name of the
service, the same for all its instances), every ``monitoring_scrape_s`` seconds,
and the alert rules of ``deploy/monitoring/alerts.yml`` (or ``monitoring_rules``).
It listens on ``monitoring_port`` (0: the port base + 1010, so 9090 by default)
and keeps its data in the state folder. ``up`` remembers the choice, so a later
``up`` or ``status`` knows it; ``down`` stops it with the rest and forgets it.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from deploy.local.health import http_healthy
from deploy.local.layout import DEPLOY_DIR, ProcessSpec, StackError
from deploy.local.services import SERVICES, instance_port
from deploy.local.settings import StackSettings

RULES = DEPLOY_DIR.parent / "monitoring" / "alerts.yml"
PORT_OFFSET = 1010  # from the port base: 9090, Prometheus's own default, for the default 8080
RETENTION = "2d"  # a laptop's stack: two days of samples are plenty
JOB = "coc"


def monitoring_port(settings: StackSettings) -> int:
    return settings.monitoring_port or settings.port_base + PORT_OFFSET


def monitoring_url(settings: StackSettings) -> str:
    return f"http://{settings.http_host}:{monitoring_port(settings)}"


def _remembered(settings: StackSettings) -> Path:
    return settings.state_dir / "monitoring"


def remember_monitoring(settings: StackSettings, on: bool) -> None:
    path = _remembered(settings)
    if on:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("on\n")
    else:
        path.unlink(missing_ok=True)


def monitoring_on(settings: StackSettings, requested: bool | None = None) -> bool:
    """``--monitoring`` / ``--no-monitoring``, else what the last ``up`` chose."""
    return requested if requested is not None else _remembered(settings).is_file()


def prometheus_config(settings: StackSettings, replicas: int, rules: Path) -> dict[str, Any]:
    """Prometheus's configuration (JSON, which is YAML too): the stack's service instances and the rules."""
    every = settings.monitoring_scrape_s
    host = settings.http_host
    targets = [
        {"targets": [f"{host}:{instance_port(settings, name, k)}"], "labels": {"service": name}}
        for k in range(1, replicas + 1)
        for name in SERVICES
    ]
    return {
        "global": {
            "scrape_interval": f"{every}s",
            "scrape_timeout": f"{min(every, 10)}s",
            "evaluation_interval": f"{every}s",
        },
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics", "static_configs": targets}],
    }


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise StackError(
            "prometheus: not installed; install Debian's prometheus (make system-deps, or "
            "sudo apt-get install prometheus), or start the stack without --monitoring"
        )
    return found


def prometheus_spec(settings: StackSettings, replicas: int) -> ProcessSpec:
    """Prometheus as a process of the stack, after the services."""
    folder = settings.state_dir.resolve() / "prometheus"
    config = folder / "prometheus.yml"
    rules = (settings.monitoring_rules or RULES).resolve()
    port = monitoring_port(settings)
    argv = (
        shutil.which("prometheus") or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={settings.http_host}:{port}",
        "--log.level=warn",
    )
    return ProcessSpec(
        name="prometheus",
        argv=argv,
        addresses=((settings.http_host, port),),
        health=partial(http_healthy, f"{monitoring_url(settings)}/-/ready"),
        prepare=partial(_write_config, settings, replicas, config, rules),
        start_timeout=60,
    )


def _write_config(settings: StackSettings, replicas: int, config: Path, rules: Path) -> None:
    prometheus_binary()
    if not rules.is_file():
        raise StackError(f"prometheus: the alert rules {rules} do not exist (COC_MONITORING_RULES)")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(prometheus_config(settings, replicas, rules), indent=2) + "\n")
