"""``coc stack install | up | down | status``: the local stack (``deploy/local``) from the command line.

It parses, prints and turns a StackError into a CommandError; the stack's logic,
which loads its client libraries only when probing, lives in ``deploy.local``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from cli.errors import EXIT_STATUS, FAILED, CommandError

if TYPE_CHECKING:
    from deploy.local.layout import ProcessSpec
    from deploy.local.settings import StackSettings

infra_option = click.option("--infra", is_flag=True, help="only Kafka and FerretDB, not the eight services")


def register(coc: click.Group) -> None:
    coc.add_command(stack)


@click.group()
def stack() -> None:
    """The local stack: Kafka, FerretDB and the eight services.

    Kafka (KRaft), FerretDB and the services as background processes, no docker.
    The services are intake, validation, render, signing, delivery, archive,
    status and workspace; pids, logs and data are kept under COC_STATE_DIR,
    binaries under COC_CACHE_DIR.
    """


def _services(infra: bool, settings: StackSettings, replicas: int | None = None) -> list[ProcessSpec]:
    """The eight services' instances as stack processes, unless only the infrastructure is wanted."""
    if infra:
        return []
    from deploy.local.services import replica_count, service_specs

    return service_specs(settings, replica_count(settings, replicas))


def _monitoring(
    infra: bool, settings: StackSettings, count: int, requested: bool | None = None
) -> list[ProcessSpec]:
    """Prometheus scraping the services, when ``--monitoring`` asks (or the last ``up`` did)."""
    from deploy.local.monitoring import monitoring_on, prometheus_spec

    if infra or not monitoring_on(settings, requested):
        return []
    return [prometheus_spec(settings, count)]


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A StackError is the user's to act on: one message, no traceback."""
    from deploy.local.layout import StackError

    try:
        yield
    except StackError as exc:
        raise CommandError(str(exc)) from exc


@stack.command(epilog=EXIT_STATUS)
def install() -> None:
    """Fetch Kafka's jars and build FerretDB once into the cache."""
    from deploy.local.install import install as install_stack
    from deploy.local.settings import StackSettings

    with _user_errors():
        install_stack(StackSettings(), out=_say)


@stack.command(epilog=EXIT_STATUS)
@infra_option
@click.option(
    "--replicas",
    type=click.IntRange(1, 6),
    help="instances of each service (default: COC_REPLICAS, else as the last up, else 1); "
    "instance k on its port + 10 * (k - 1)",
)
@click.option(
    "--brokers",
    type=click.Choice(["1", "3"]),
    help="Kafka brokers (default: COC_STACK_BROKERS, else as the last up, else 1); 3: a KRaft cluster "
    "with replication 3, SASL_SSL (SCRAM) and ACLs per service, brokers on the Kafka port + 100 * (k - 1)",
)
@click.option(
    "--monitoring/--no-monitoring",
    default=None,
    help="also Prometheus scraping every service with the alert rules (deploy/monitoring), on the port base "
    "+ 1010 (9090) or COC_MONITORING_PORT (default: as the last up, else off)",
)
def up(infra: bool, replicas: int | None, brokers: str | None, monitoring: bool | None) -> None:
    """Start what is not running; wait until each answers.

    Kafka, FerretDB and the eight services (only the first two with --infra),
    installed first if needed; Prometheus after them with --monitoring.
    """
    from deploy.local import supervise
    from deploy.local.cluster import broker_count, remember_brokers
    from deploy.local.monitoring import remember_monitoring
    from deploy.local.services import remember_replicas, replica_count
    from deploy.local.settings import StackSettings

    began = time.monotonic()
    settings = StackSettings()
    count = replica_count(settings, replicas)
    with _user_errors():
        remember_brokers(settings, broker_count(settings, int(brokers) if brokers else None))
        if not infra:
            remember_replicas(settings, count)
        watch = _monitoring(infra, settings, count, monitoring)
        if monitoring is not None:
            remember_monitoring(settings, monitoring)
        supervise.up(settings, extra_specs=[*_services(infra, settings, count), *watch], out=_say)
    _say(f"stack: ready in {time.monotonic() - began:.1f}s")


@stack.command(epilog="Exit status: 0 stopped, 1 a port is still open (a process the stack did not start).")
def down() -> int:
    """Stop the processes `coc stack up` started.

    Only the recorded pids are signalled, never a process found by its name.
    """
    from deploy.local import supervise
    from deploy.local.cluster import forget_brokers
    from deploy.local.monitoring import remember_monitoring
    from deploy.local.services import forget_replicas
    from deploy.local.settings import StackSettings

    settings = StackSettings()
    with _user_errors():
        still_open = supervise.down(settings, out=_say)
    forget_replicas(settings)
    forget_brokers(settings)
    remember_monitoring(settings, False)
    for host, port in still_open:
        print(
            f"coc stack down: {host}:{port} still accepts connections, from a process "
            "the stack did not start (left alone)",
            file=sys.stderr,
        )
    return FAILED if still_open else 0


@stack.command(epilog="Exit status: 0 every process healthy, 1 any is not, 2 bad command line.")
@infra_option
@click.option("--json", "as_json", is_flag=True, help="the rows as JSON")
def status(infra: bool, as_json: bool) -> int:
    """Each process of the stack: pid, address and health."""
    from cli.output import rows, show, show_json, table
    from deploy.local import supervise
    from deploy.local.services import replica_count
    from deploy.local.settings import StackSettings

    settings = StackSettings()
    specs = _services(infra, settings)
    found = supervise.status(
        settings, extra_specs=[*specs, *_monitoring(infra, settings, replica_count(settings))]
    )
    if as_json:
        show_json([asdict(row) for row in found])
    else:
        cells = (
            (row.name, row.pid if row.pid is not None else "-", row.address, row.state + note(row.note))
            for row in found
        )
        show(rows(table("PROCESS", "PID", "ADDRESS", "STATE", right=("PID",)), cells))
        from deploy.local.cluster import cluster_lines

        for line in cluster_lines(settings):
            print(line)
    return 0 if found and all(row.state == "healthy" for row in found) else FAILED


def note(text: str | None) -> str:
    return f" ({text})" if text else ""
