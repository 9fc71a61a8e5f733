"""Execute the book's notebooks several at a time into a fresh jupyter-cache, which the book build then reads.

    python tools/execute_notebooks.py --cache _build/.jupyter_cache --jobs 2 book/*.ipynb

The book is built with ``execute_notebooks: cache``: myst-nb takes each notebook's outputs from the jupyter-cache
when it holds an execution of the same code, and executes the notebook itself (one at a time) when it does not.
``make book`` runs this script first: it empties the cache, executes every notebook afresh, ``--jobs`` at a time
(each in its own kernel, which inherits ``OMP_NUM_THREADS`` and ``DIFFNOTES_PROFILE``), and caches each execution
as myst-nb's cache mode would have: the same call (jupyter-cache's ``single_nb_execution``, in the notebook's folder,
with the timeout and ``allow_errors`` of ``_config.yml``), the same record. The build then finds every notebook in
the cache ("Using cached notebook" in its log) and writes the executed copies to ``_build/jupyter_execute/`` as
before. A cache is only matched by code, not by the package it imports, so the cache is emptied before each run
and removed after the build (``make book``): it never outlives the build it was made for.

A notebook that fails (a cell raises, or times out) is not cached; its traceback is printed, the others still run,
and the script exits with 1. The longest notebooks start first (``--times``: a record of benchmarks/notebook_times.py;
notebooks it does not list count as the longest), so the last to finish is a short one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import nbformat
import yaml


def execution_settings(config: Path) -> tuple[int, bool]:
    """The timeout and allow_errors of the ``execute`` section of a Jupyter Book ``_config.yml`` (Jupyter Book's
    defaults where missing), which myst-nb passes to the same execution call."""
    execute = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("execute") or {}
    return int(execute.get("timeout", 30)), bool(execute.get("allow_errors", False))


def longest_first(notebooks: list[Path], times: dict[str, float]) -> list[Path]:
    """``notebooks`` in the order to start them: by recorded seconds (keyed by file name), longest first; those
    without a record first of all (new chapters tend to be the long ones); ties keep the given order."""
    return sorted(notebooks, key=lambda path: -times.get(path.name, math.inf))


def recorded_times(record: Path | None) -> dict[str, float]:
    """The seconds per notebook of a benchmarks/notebook_times.py record; none if there is no such file."""
    if record is None or not record.exists():
        return {}
    return dict(json.loads(record.read_text(encoding="utf-8"))["results"]["seconds"])


def execute(path: Path, timeout: int, allow_errors: bool) -> tuple[nbformat.NotebookNode, float, str | None]:
    """Execute one notebook as myst-nb does (in a worker process): the executed notebook, the seconds, and the
    traceback if it failed."""
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(path.parent.resolve()), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    return result.nb, result.time, result.exc_string if result.err is not None else None


def run(notebooks: list[Path], cache_path: Path, jobs: int, timeout: int, allow_errors: bool,
        times: dict[str, float] | None = None) -> list[Path]:
    """Empty the cache at ``cache_path``, execute ``notebooks`` ``jobs`` at a time and cache each that succeeded;
    return those that failed."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    if cache_path.exists():
        shutil.rmtree(cache_path)
    cache = get_cache(str(cache_path))
    order = longest_first([path.resolve() for path in notebooks], times or {})
    failed, total, start = [], 0.0, time.perf_counter()
    print(f"Executing {len(order)} notebooks, {jobs} at a time, into {cache_path}", flush=True)
    # spawn, not fork: each worker starts clean (no copy of the parent's database connection or threads)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        running = {pool.submit(execute, path, timeout, allow_errors): path for path in order}
        for future in as_completed(running):
            path = running[future]
            name = os.path.relpath(path)
            notebook, seconds, error = future.result()  # a worker that broke (not a cell) ends the script here
            total += seconds
            if error is not None:
                failed.append(path)
                print(f"FAILED {name} after {seconds:.1f} s:\n{error}", file=sys.stderr, flush=True)
                continue
            # the record myst-nb's cache mode makes when it executes a notebook itself
            cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"executed {name} in {seconds:.1f} s", flush=True)
    print(f"{len(order) - len(failed)} of {len(order)} notebooks executed in {time.perf_counter() - start:.1f} s "
          f"(the sum of their times: {total:.1f} s)", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="the jupyter-cache folder the build reads")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="notebooks at a time")
    parser.add_argument("--config", type=Path, default=Path("_config.yml"), help="the book's configuration")
    parser.add_argument("--times", type=Path, help="a notebook_times record, to start the longest first")
    args = parser.parse_args(argv)
    timeout, allow_errors = execution_settings(args.config)
    failed = run(args.notebooks, args.cache, max(1, args.jobs), timeout, allow_errors, recorded_times(args.times))
    if failed:
        names = ", ".join(os.path.relpath(path) for path in failed)
        print(f"{len(failed)} notebooks failed: {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
