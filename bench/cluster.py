"""The pipeline on three brokers against one, in the same run: two fresh private stacks, one after the other.

    python -m bench.cluster [--builds N] [--preload N] [--replicas N] [--setting NAME=VALUE ...]
                            [--cluster-first] [--port-base P]

For each of the two modes a fresh stack is started on a state folder and ports of
its own (``coc stack up``, then ``coc stack up --brokers 3``: three KRaft brokers,
TLS with SCRAM, ACLs, replication 3 with ``min.insync.replicas`` 2, producers
with ``acks=all``), ``python -m bench.pipeline --builds N`` is run against it, and
the stack is stopped and its folder removed. Printed: each run's own figures, then
both side by side with their ratio (cluster / one broker): builds archived per
second, the efficiency, and the CPU seconds per 1,000 certificates of all
processes and of Kafka alone (first publish to at rest). ``--preload N`` is passed
to each run (the stack first brought to N certificates, untimed: the brokers'
JIT compilation then falls before the measure, as on a cluster that has been
running); ``--replicas N`` runs N instances of each service in both stacks
(``coc stack up --replicas N``); ``--setting COC_...=VALUE`` gives both stacks a
setting (e.g. ``COC_KAFKA_COMPRESSION=zstd``).

The stacks use ports from ``--port-base`` (default 26080: services 26081-26088,
their second instances 26091-26098, Kafka 27092/27192/27292, controllers
27093/27193/27293, FerretDB 26017), so a running development stack is left alone. The machine should be otherwise quiet:
both modes share its cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_UP_S = 900.0  # a cluster node recovering its logs on a loaded machine may take minutes
RUN_MARGIN_S = 600.0
KAFKA_OFFSET = 1_012  # Kafka's port from the port base: clear of the services' instances (+1..+8, +11..+18, ...)  # on top of the pipeline's own timeout: its stage-code measures and read model


@dataclass(frozen=True)
class Run:
    """What one bench.pipeline run printed, and the figures compared."""

    mode: str
    output: str
    per_second: float
    efficiency: float
    cpu_per_1000: float
    kafka_per_1000: float
    archived_all: bool


def parse(mode: str, output: str, returncode: int) -> Run:
    """The headline figures of ``bench.pipeline``'s output (its first per-process table: to at rest)."""
    rate = re.search(r"^throughput\s+([\d.]+) builds", output, re.M)
    efficiency = re.search(r"^efficiency\s+([\d.]+)", output, re.M)
    table = output.split("per process, first publish to at rest", 1)[-1].split("\n\n", 1)[0]
    rows = {
        m[1]: float(m[3]) for m in re.finditer(r"^(\S+)\s+([\d.]+)\s+([\d.]+)(?:\s+\d+)?[ \t]*$", table, re.M)
    }
    if rate is None or efficiency is None or "all" not in rows:
        raise ValueError(f"{mode}: bench.pipeline printed no figures (exit {returncode})")
    return Run(
        mode=mode,
        output=output,
        per_second=float(rate[1]),
        efficiency=float(efficiency[1]),
        cpu_per_1000=rows["all"],
        kafka_per_1000=sum(value for name, value in rows.items() if name.startswith("kafka")),
        archived_all=returncode == 0,
    )


def environment(state_dir: Path, port_base: int, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ``COC_`` settings, pointed at a private stack, with ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COC_")}
    env.update(settings or {})
    env.update(
        {
            "COC_STATE_DIR": str(state_dir),
            "COC_PORT_BASE": str(port_base),
            "COC_KAFKA_BOOTSTRAP": f"127.0.0.1:{port_base + KAFKA_OFFSET}",
            "COC_KAFKA_CONTROLLER_PORT": str(port_base + KAFKA_OFFSET + 1),
            "COC_MONGO_URL": f"mongodb://127.0.0.1:{port_base - 63}",
        }
    )
    return env


def coc(env: Mapping[str, str], *args: str, timeout: float = STACK_UP_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Plan:
    builds: int
    preload: int
    port_base: int
    settings: Mapping[str, str]
    replicas: int = 1


def measure(mode: str, brokers: int, plan: Plan) -> Run:
    """A fresh stack of ``brokers`` brokers, one bench.pipeline run against it, the stack removed."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"coc-bench-{mode.replace(' ', '-')}-"))
    env = environment(state_dir, plan.port_base, plan.settings)
    builds = plan.builds
    say(f"{mode}: coc stack up --brokers {brokers} --replicas {plan.replicas} (state {state_dir})")
    began = time.monotonic()
    try:
        up = coc(env, "stack", "up", "--brokers", str(brokers), "--replicas", str(plan.replicas))
        if up.returncode != 0:
            raise RuntimeError(f"{mode}: coc stack up failed:\n{(up.stdout + up.stderr)[-3000:]}")
        say(f"{mode}: stack up in {time.monotonic() - began:.0f} s; bench.pipeline --builds {builds}")
        timeout = max(900.0, (builds + plan.preload) / 20)
        command = ["--builds", str(builds), "--preload", str(plan.preload), "--timeout", str(timeout)]
        done = subprocess.run(
            [sys.executable, "-m", "bench.pipeline", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout + RUN_MARGIN_S,
            check=False,
        )
        if done.stderr.strip():
            say(f"{mode}: bench.pipeline said on stderr:\n{done.stderr.strip()[-2000:]}")
        return parse(mode, done.stdout, done.returncode)
    finally:
        down = coc(env, "stack", "down", timeout=300)
        if down.returncode == 0:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            say(f"{mode}: coc stack down failed; its state and logs are kept in {state_dir}")


def comparison(single: Run, cluster: Run) -> list[str]:
    def row(name: str, one: float, three: float, digits: int) -> str:
        ratio = f"{three / one:.2f}" if one else "-"
        return f"{name:<32}{one:>12.{digits}f}{three:>14.{digits}f}{ratio:>10}"

    return [
        "three brokers against one, same run",
        f"{'':<32}{'one broker':>12}{'three brokers':>14}{'ratio':>10}",
        row("builds archived per second", single.per_second, cluster.per_second, 1),
        row("efficiency", single.efficiency, cluster.efficiency, 3),
        row("CPU s per 1,000, all processes", single.cpu_per_1000, cluster.cpu_per_1000, 1),
        row("CPU s per 1,000, Kafka", single.kafka_per_1000, cluster.kafka_per_1000, 1),
    ]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--builds", type=int, default=10_000, help="builds per run (default 10,000)")
    parser.add_argument("--preload", type=int, default=0, help="passed to bench.pipeline (default 0)")
    parser.add_argument("--replicas", type=int, default=1, help="instances of each service (default 1)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="COC_NAME=VALUE",
        help="a setting for both stacks (repeatable)",
    )
    parser.add_argument("--cluster-first", action="store_true", help="run the three brokers first")
    parser.add_argument("--port-base", type=int, default=26_080, help="the stacks' port base (default 26080)")
    args = parser.parse_args(argv)
    if args.builds < 1 or args.preload < 0 or not 1 <= args.replicas <= 3:
        parser.error("--builds must be 1 or more, --preload 0 or more and --replicas 1 to 3")
    settings = dict(item.split("=", 1) for item in args.setting if "=" in item)
    if len(settings) != len(args.setting) or not all(name.startswith("COC_") for name in settings):
        parser.error("--setting takes COC_NAME=VALUE")
    if not 1_100 <= args.port_base <= 60_000:
        parser.error("--port-base must be between 1100 and 60000")
    modes = [("one broker", 1), ("three brokers", 3)]
    if args.cluster_first:
        modes.reverse()
    try:
        plan = Plan(args.builds, args.preload, args.port_base, settings, args.replicas)
        runs = {mode: measure(mode, brokers, plan) for mode, brokers in modes}
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"bench.cluster: {exc}", file=sys.stderr)
        return 1
    for mode, _brokers in modes:
        print(f"\n=== {mode} ===\n{runs[mode].output.strip()}")
    print("\n" + "\n".join(comparison(runs["one broker"], runs["three brokers"])))
    return 0 if all(run.archived_all for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
