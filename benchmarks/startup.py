"""Start-up: how long the command line takes to start, and how many modules it imports.

Each command runs in fresh processes: printed are the best wall time of --repeat runs and the
number of modules the process imported (``python -X importtime``, counted in one more run).

    python benchmarks/startup.py [--repeat 5]

Targets (an idle machine): hhsim --help, --version and <command> --help under 0.5 s;
hhsim validate experiments/home-repairs.toml under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The commands, as typed; python and hhsim are those of this environment.
COMMANDS = [("python -c pass", None), ('python -c "import hhsim"', None), ("hhsim --help", 0.5),
            ("hhsim --version", 0.5), ("hhsim run --help", 0.5),
            ("hhsim validate experiments/home-repairs.toml", 2.0)]


def argv(command: str) -> list[str]:
    """``command`` with its program (python or hhsim) taken from this environment."""
    program, *rest = shlex.split(command)
    return [sys.executable if program == "python" else str(Path(sys.executable).parent / program), *rest]


def seconds(args: list[str], repeat: int) -> float:
    """The best wall time of ``repeat`` fresh runs of ``args``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def modules(args: list[str]) -> int:
    """How many modules a run of ``args`` imports."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    err = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stderr
    return sum(line.startswith("import time:") for line in err.splitlines()) - 1  # less the header


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="runs per command (the best is shown)")
    args = p.parse_args()
    print(f"best of {args.repeat} fresh processes; load average {os.getloadavg()[0]:.2f}")
    for command, target in COMMANDS:
        shown = f"  (target < {target} s)" if target else ""
        print(f"  {command:<46} {seconds(argv(command), args.repeat):6.2f} s  "
              f"{modules(argv(command)):5d} modules{shown}")


if __name__ == "__main__":
    main()
