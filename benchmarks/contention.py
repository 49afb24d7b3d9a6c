"""Benchmark under contention: commands timed beside 0, 1x and 2x the cores' worth of other busy work.

A bounded load generator (processes that busy-loop, stopped by the benchmark
and in any case after ``--max-load-s``) runs beside each command. It starts
``--warm-up-s`` seconds before the timing, so the 1-minute load average that
neurolearn reads at start reflects it, as on a node whose other jobs run for
long. Every command runs in a fresh process, start-up and writing included:

* ``register``: ``neurolearn register F M -o P --transform syn`` on the 2 mm
  known-truth case of ``benchmarks/engine.py`` (no mask, as a user calls it),
  and ANTs' ``ants.registration(F, M, type_of_transform='SyN')`` in a fresh
  ``python -c`` process;
* ``smri``: ``neurolearn smri`` on aomic sub-0001 (1 mm);
* ``fmri``: ``neurolearn fmri`` on studyforrest sub-02, its smri outputs made
  once beforehand (untimed);
* ``floor``: a reference, one busy-looping process per core, each a fixed
  count of iterations, with no synchronisation between them. Its ratio to
  idle is the share of the cores the kernel's fair scheduler leaves to a
  program that uses every core beside the load: the best ratio any such
  program can reach.

``--repeats`` runs every command that many times per load, interleaved, and
the table gives the median (and the range).

The table gives wall seconds per load and the ratio to the idle run, and the
OpenMP policy neurolearn logged. Usage::

    python benchmarks/contention.py [--cases floor register smri fmri] [--loads 0 1 2] [--repeats 1] [--results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CORES = os.cpu_count() or 1

#: The environment the benchmark was started in: commands run as a user starts them (benchmarks/engine.py, imported
#: for its test case, fixes OMP_NUM_THREADS and ITK's thread count for its own in-process timings).
USER_ENVIRONMENT = dict(os.environ)


def _busy(until: float) -> None:
    while time.time() < until:
        pass


class Load:
    """``workers`` busy-looping processes for at most ``max_s`` seconds (a context manager)."""

    def __init__(self, workers: int, max_s: float) -> None:
        self.workers, self.max_s = workers, max_s
        self.processes: list[multiprocessing.Process] = []

    def __enter__(self) -> Load:
        until = time.time() + self.max_s
        self.processes = [multiprocessing.Process(target=_busy, args=(until,), daemon=True) for _ in range(self.workers)]
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()


def timed(command: list[str], log: Path) -> float:
    """Wall seconds of ``command`` in a fresh process (output to ``log``); raises if it fails."""
    start = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True, env=USER_ENVIRONMENT)
    return time.perf_counter() - start


def policy(log: Path) -> str:
    """The OpenMP decision neurolearn logged (``sleep``/``spin``/``environment``, then the threads per process), or
    empty."""
    for line in log.read_text(errors="replace").splitlines():
        if "OpenMP" in line:
            decision = "sleep" if "sleep" in line else "spin" if "spin" in line else "environment"
            threads = re.search(r"\((\d+) x (\d+)\)", line)
            return decision if threads is None else f"{decision}, {threads.group(2)} thread(s)"
    return ""


def register_case(work: Path) -> dict[str, Callable[[Path], list[str]]]:
    """The 2 mm known-truth pair as NIfTI files, and the two commands that register it."""
    sys.path.insert(0, str(Path(__file__).parent))
    import engine

    case = engine.make_case(1, 2)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for name in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(case[name].astype(np.float32), affine), work / f"{name}.nii.gz")
    fixed, moving = work / "fixed.nii.gz", work / "moving.nii.gz"
    ants_code = (f"import ants; ants.registration(ants.image_read('{fixed}'), ants.image_read('{moving}'), "
                 "type_of_transform='SyN', random_seed=42)")
    return {
        "neurolearn register syn": lambda out: ["neurolearn", "register", str(fixed), str(moving), "-o",
                                                str(out / "reg_"), "--transform", "syn"],
        "ants.registration 'SyN'": lambda out: [sys.executable, "-c", ants_code],
    }


def smri_case() -> dict[str, Callable[[Path], list[str]]]:
    bids = DATA / "aomic" / "bids"
    return {"neurolearn smri (aomic)": lambda out: ["neurolearn", "smri", str(bids), str(out / "d"), "participant"]}


def fmri_case(work: Path) -> dict[str, Callable[[Path], list[str]]]:
    """studyforrest's fmri stage, each run on a fresh copy of smri outputs made once here (untimed)."""
    bids, anat = DATA / "studyforrest" / "bids", work / "studyforrest-smri"
    subprocess.run(["neurolearn", "smri", str(bids), str(anat), "participant"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def command(out: Path) -> list[str]:
        shutil.copytree(anat, out / "d")
        return ["neurolearn", "fmri", str(bids), str(out / "d"), "participant"]

    return {"neurolearn fmri (studyforrest)": command}


#: Iterations of each reference process's loop (a few seconds idle).
FLOOR_ITERATIONS = 120_000_000


def floor_case() -> dict[str, Callable[[Path], list[str]]]:
    """The reference: ``CORES`` forked processes, each counting to :data:`FLOOR_ITERATIONS`, in a fresh process."""
    code = ("import os\n"
            f"children = [os.fork() for _ in range({CORES})]\n"
            "if 0 in children:\n"
            f"    total = sum(range({FLOOR_ITERATIONS}))\n"
            "    os._exit(0)\n"
            "for child in children:\n"
            "    os.waitpid(child, 0)\n")
    return {f"reference: {CORES} busy processes": lambda out: [sys.executable, "-c", code]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["register", "smri", "fmri"])
    parser.add_argument("--loads", nargs="+", type=float, default=[0.0, 1.0, 2.0],
                        help="other busy work, in multiples of the cores")
    parser.add_argument("--repeats", type=int, default=1, help="timings per command and load (the median is shown)")
    parser.add_argument("--warm-up-s", type=float, default=60.0)
    parser.add_argument("--max-load-s", type=float, default=900.0)
    parser.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="contention_") as tmp:
        work = Path(tmp)
        commands: dict[str, Callable[[Path], list[str]]] = {}
        for case in args.cases:
            commands |= {"register": lambda: register_case(work), "smri": smri_case,
                         "fmri": lambda: fmri_case(work), "floor": floor_case}[case]()
        for load in args.loads:
            workers = round(load * CORES)
            with Load(workers, args.max_load_s):
                time.sleep(args.warm_up_s if workers else 0.0)
                readings: dict[str, list[float]] = {}
                for repeat in range(args.repeats):
                    for name, make in commands.items():
                        out = work / f"{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}-{load:g}x-{repeat}"
                        out.mkdir()
                        log = out / "log.txt"
                        seconds = timed(make(out), log)
                        readings.setdefault(name, []).append(seconds)
                        row = rows.setdefault(name, {"command": name})
                        row[f"policy {load:g}x"] = policy(log)
                        print(f"{name} at load {load:g}x ({workers} busy processes): {seconds:.1f} s "
                              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
                for name, seconds_list in readings.items():
                    rows[name][f"load {load:g}x s"] = float(np.median(seconds_list))
                    if args.repeats > 1:
                        rows[name][f"range {load:g}x"] = f"{min(seconds_list):.1f}-{max(seconds_list):.1f}"
    for row in rows.values():
        idle = row.get("load 0x s")
        for load in args.loads[1:]:
            key = f"load {load:g}x s"
            if isinstance(idle, float) and isinstance(row.get(key), float):
                row[f"{load:g}x / idle"] = row[key] / idle  # type: ignore[operator]
    columns = ["command", *[f"load {load:g}x s" for load in args.loads],
               *([f"range {load:g}x" for load in args.loads] if args.repeats > 1 else []),
               *[f"{load:g}x / idle" for load in args.loads[1:]], *[f"policy {load:g}x" for load in args.loads]]
    table = markdown_table(rows.values(), columns)
    print(table)
    if args.results:
        append_results(
            f"\n## Contention (issue 21), {started}\n\n`python benchmarks/contention.py --cases {' '.join(args.cases)} "
            f"--loads {' '.join(f'{x:g}' for x in args.loads)} --repeats {args.repeats}`; {CORES} cores; "
            f"seconds are the median of {args.repeats} interleaved timing(s); other work = busy-looping processes "
            f"started {args.warm_up_s:g} s before each load's timings; every command a fresh process (start-up "
            f"and writing included); ANTs in a fresh `python -c` process.\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
