"""How quickly the ``coc`` command starts, against the interpreter alone, measured in the same run.

    python -m bench.cli [--runs N]

Each command line runs ``--runs`` times (10 by default) as its own process,
the command lines taking turns so a change in the machine's load falls on all
of them alike; the figure is the median wall time from start to exit, with the
peak resident memory of the process. The baseline is ``python -c pass`` on the
same interpreter. ``coc --help`` must stay under 0.3 s (issue 26).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3
COMMANDS = (
    ("python -c pass", ("-c", "pass")),
    ("coc --help", ("-m", "cli", "--help")),
    ("coc stack --help", ("-m", "cli", "stack", "--help")),
    ("coc check --help", ("-m", "cli", "check", "--help")),
    ("coc publish --help", ("-m", "cli", "publish", "--help")),
    ("coc users add --help", ("-m", "cli", "users", "add", "--help")),
)


def coc_argv(args: tuple[str, ...]) -> list[str]:
    """``coc`` as a user starts it: the installed script when there is one, else ``python -m cli``."""
    script = Path(sys.executable).with_name("coc")
    if args[:2] == ("-m", "cli") and script.exists():
        return [str(script), *args[2:]]
    return [sys.executable, *args]


def run_once(argv: list[str]) -> tuple[float, int]:
    """Seconds from start to exit, and the peak resident memory (KB) of the process."""
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    took = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}")
    return took, usage.ru_maxrss


def measure(runs: int) -> dict[str, tuple[list[float], list[int]]]:
    seen: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name, _ in COMMANDS}
    for _ in range(runs):
        for name, args in COMMANDS:
            took, peak = run_once(coc_argv(args))
            seen[name][0].append(took)
            seen[name][1].append(peak)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command line (default 10)")
    args = parser.parse_args()
    run_once(coc_argv(COMMANDS[1][1]))  # once unmeasured: the bytecode caches are written, the files read
    seen = measure(args.runs)
    baseline = statistics.median(seen[COMMANDS[0][0]][0])
    print(f"median of {args.runs} runs each, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print(f"{'command':<24}{'median s':>10}{'ratio':>8}{'peak MB':>9}")
    for name, (times, peaks) in seen.items():
        median = statistics.median(times)
        print(f"{name:<24}{median:>10.3f}{median / baseline:>8.1f}{statistics.median(peaks) / 1024:>9.1f}")
    help_s = statistics.median(seen["coc --help"][0])
    verdict = "under" if help_s < TARGET_S else "NOT under"
    print(f"coc --help: {help_s:.3f} s, {help_s / baseline:.1f} x python -c pass; {verdict} {TARGET_S} s")


if __name__ == "__main__":
    main()
