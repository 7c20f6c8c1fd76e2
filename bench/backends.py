"""FerretDB's two backends side by side: the requests the pipeline's hot path makes, on each.

    python -m bench.backends [--docs N] [--rounds N]

Starts, for the run only and on ports of its own, a PostgreSQL 15 cluster (Debian's
``/usr/lib/postgresql/15``, in a temporary directory) with a FerretDB on it, and
a second FerretDB on SQLite, both from the binary ``coc stack up`` built
(``.cache/ferretdb-*``). Then, on each in turn and in alternating rounds so both
see the same machine: a collection of N small read-model documents, and the
requests the stages make per certificate since they write what is new in bulk
(``shared.mongo``): a find by ``_id``, a replace by ``_id``, an ``$set`` by
``_id``, and an ``insert_many`` of 50 new documents. Printed: each rate on each
backend and the ratio PostgreSQL / SQLite. Everything it started is stopped
and removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from deploy.local.layout import StackPaths
from deploy.local.settings import StackSettings

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
PAD = "x" * 200  # a read-model entry's size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ferretdb_binary() -> Path:
    """The stack's own build (its patches named in ``deploy.local.layout.FERRETDB_BUILD``)."""
    binary = StackPaths.of(StackSettings()).ferretdb_bin
    if not binary.exists():
        raise SystemExit(f"no FerretDB build at {binary}: run `coc stack up` once first")
    return binary


def wait_for(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s")


def as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as its own user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def backends(work: Path) -> Iterator[dict[str, str]]:
    """A FerretDB on SQLite and one on a fresh PostgreSQL cluster; their MongoDB URLs."""
    if not (POSTGRES_BIN / "initdb").exists():
        raise SystemExit(f"PostgreSQL 15 is not installed ({POSTGRES_BIN}); apt-get install postgresql-15")
    binary = ferretdb_binary()
    pg_data, sqlite_data = work / "pg", work / "sqlite"
    sqlite_data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    pg_port, on_pg, on_sqlite = free_port(), free_port(), free_port()
    subprocess.run(
        as_postgres([str(POSTGRES_BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(pg_data)]),
        check=True,
        capture_output=True,
    )
    log = work / "pg.log"
    subprocess.run(
        as_postgres(
            [
                str(POSTGRES_BIN / "pg_ctl"),
                "-D",
                str(pg_data),
                "-l",
                str(log),
                "-w",
                "-o",
                f"-p {pg_port} -k {work} -c listen_addresses=127.0.0.1",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(
            as_postgres(
                [
                    str(POSTGRES_BIN / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(pg_port),
                    "-U",
                    "postgres",
                    "ferretdb",
                ]
            ),
            check=True,
            capture_output=True,
        )
        # Each FerretDB keeps its state file (state.json) beside its data, never in the
        # folder the bench was started from (its default, "."): the repository root.
        common = ["--telemetry=disable", "--log-level=error", "--debug-addr=-"]
        processes.append(
            subprocess.Popen(
                [
                    str(binary),
                    "--handler=postgresql",
                    f"--listen-addr=127.0.0.1:{on_pg}",
                    f"--postgresql-url=postgres://postgres@127.0.0.1:{pg_port}/ferretdb",
                    f"--state-dir={work / 'ferretdb-pg'}",
                    *common,
                ]
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    str(binary),
                    "--handler=sqlite",
                    f"--listen-addr=127.0.0.1:{on_sqlite}",
                    f"--sqlite-url=file:{sqlite_data}/",
                    f"--state-dir={work / 'ferretdb-sqlite'}",
                    *common,
                ]
            )
        )
        wait_for(on_pg, "FerretDB on PostgreSQL")
        wait_for(on_sqlite, "FerretDB on SQLite")
        yield {
            "sqlite": f"mongodb://127.0.0.1:{on_sqlite}/",
            "postgresql": f"mongodb://127.0.0.1:{on_pg}/",
        }
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        subprocess.run(
            as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(pg_data), "-m", "fast", "stop"]),
            capture_output=True,
        )


Operation = Callable[[Any, int], None]


def operations(docs: int) -> dict[str, tuple[Operation, int]]:
    """Each request the hot path makes, and how many of it one timed block sends."""

    def find(col: Any, n: int) -> None:
        col.find_one({"_id": f"V{n % docs:07d}"})

    def replace(col: Any, n: int) -> None:
        col.replace_one({"_id": f"V{n % docs:07d}"}, {"state": "validated", "seq": n, "pad": PAD})

    def set_fields(col: Any, n: int) -> None:
        col.update_one({"_id": f"V{n % docs:07d}"}, {"$set": {"state": "signed", "seq": n}})

    def insert_50(col: Any, n: int) -> None:
        col.insert_many(
            [{"_id": f"N{n:07d}-{k}", "state": "received", "pad": PAD} for k in range(50)], ordered=False
        )

    return {
        "find_one by _id": (find, 200),
        "replace_one by _id": (replace, 100),
        "update_one $set by _id": (set_fields, 100),
        "insert_many of 50 (documents)": (insert_50, 10),
    }


def measure(urls: dict[str, str], docs: int, rounds: int) -> dict[str, dict[str, float]]:
    clients: dict[str, MongoClient[dict[str, Any]]] = {
        name: MongoClient(url, serverSelectionTimeoutMS=10_000) for name, url in urls.items()
    }
    try:
        collections = {name: client["bench_backends"]["records"] for name, client in clients.items()}
        for name, col in collections.items():
            began = time.perf_counter()
            for start in range(0, docs, 1000):
                batch = range(start, min(docs, start + 1000))
                col.insert_many(
                    [{"_id": f"V{n:07d}", "state": "received", "seq": 0, "pad": PAD} for n in batch]
                )
            print(f"{name}: {docs:,} documents loaded in {time.perf_counter() - began:.1f} s", flush=True)
        spent: dict[str, dict[str, float]] = {name: {} for name in urls}
        counted: dict[str, int] = {}
        sequence = 0
        for _round in range(rounds):  # alternating: each backend's blocks see the same machine
            for label, (operation, block) in operations(docs).items():
                for name, col in collections.items():
                    began = time.perf_counter()
                    for _ in range(block):
                        sequence += 1
                        operation(col, sequence)
                    spent[name][label] = spent[name].get(label, 0.0) + time.perf_counter() - began
                counted[label] = counted.get(label, 0) + block * (
                    50 if label.startswith("insert_many") else 1
                )
        return {name: {label: counted[label] / s for label, s in by.items()} for name, by in spent.items()}
    finally:
        for client in clients.values():
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--docs", type=int, default=20_000, help="documents in the collection (default 20000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="coc-backends-") as tmp, backends(Path(tmp)) as urls:
        rates = measure(urls, args.docs, args.rounds)
    print(f"\nFerretDB backends, one client, {args.docs:,} documents in the collection (requests/s)")
    print(f"{'request':32} {'SQLite':>10} {'PostgreSQL':>11} {'PG / SQLite':>12}")
    for label in rates["sqlite"]:
        lite, pg = rates["sqlite"][label], rates["postgresql"][label]
        print(f"{label:32} {lite:10,.0f} {pg:11,.0f} {pg / lite:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
