#!/usr/bin/env python3
"""Times parsedmarc --offline on DMARC aggregate reports, for comparison with mailshift.

Normally run by the bench, on the reports it generated, right after mailshift imported them:

    python3 -m venv target/bench-venv
    target/bench-venv/bin/pip install parsedmarc==11.1.0
    cargo bench --bench reports_import -- --compare-parsedmarc

It can also be run by hand on any directory or files of reports:

    target/bench-venv/bin/python benches/compare_parsedmarc.py DIR_OR_FILE... \
        [--expect-reports N --expect-records N --expect-messages N] [--mode cli|api]

--mode cli (the default, and what the bench uses) runs the `parsedmarc` command of this python's
environment the way a user runs it on a directory of reports:

    parsedmarc --offline -s -o OUT DIR_OR_FILE...

in a child process, with the wall clock and the child's peak resident memory (its ru_maxrss,
from wait4) measured around it: interpreter start-up, parsing, and writing aggregate.json and
aggregate.csv included. `--offline` turns off geolocation and reverse DNS (no IP database
download, no PTR queries); an strace of such a run shows no socket opened. `-s` only stops the
JSON being printed to the terminal as well. parsedmarc's own default of one process is kept
(`n_procs` can only be raised in a configuration file); mailshift's import is one thread too.
The start-up alone (`parsedmarc --version`, which imports the same modules) is timed separately,
so a comparison can be made with and without it.

--mode api calls `parsedmarc.parse_report_file(path, offline=True)` per file in this process,
timing the parsing only (no start-up, no output written); peak memory is this process's VmHWM.

The run counts only if parsedmarc exited 0, logged no file it failed to parse, and its output
holds the expected reports, records and messages (aggregate.csv, one row per record, is read
back; the `count` column sums to the messages): `ok` is false otherwise, with the reasons in
`problems`. The result is one JSON line on stdout:

    {"tool": "parsedmarc", "version": ..., "mode": ..., "seconds": ..., "startup_seconds": ...,
     "peak_rss_mib": ..., "reports_parsed": ..., "records": ..., "messages": ..., "files": ...,
     "failed_files": ..., "exit_code": ..., "ok": ..., "problems": [...]}

and a human-readable line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

INSTALL = (
    "python3 -m venv target/bench-venv && target/bench-venv/bin/pip install parsedmarc==11.1.0"
)


def self_peak_rss_kib() -> float:
    """VmHWM of this process."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def list_files(paths: list[str]) -> list[str]:
    """The files parsedmarc reads for these arguments: a directory's entries (not recursive)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    files.append(full)
        else:
            files.append(path)
    return files


def run_child(cmd: list[str], stdout_path: str, stderr_path: str) -> tuple[float, int, float]:
    """Runs `cmd`: wall seconds, exit code, peak RSS in KiB (ru_maxrss of the child).

    ru_maxrss is at least the RSS of the process that spawned it (Linux carries the old
    address space's high-water mark across exec); this driver is about 10 MiB, far below
    parsedmarc's peak, so the figure is parsedmarc's."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, float(usage.ru_maxrss)


def count_csv(path: str) -> tuple[int, int, int]:
    """(reports, records, messages) in parsedmarc's aggregate.csv: one row per record."""
    reports = set()
    records = messages = 0
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            reports.add((row.get("org_name"), row.get("report_id")))
            records += 1
            messages += int(row.get("count") or 0)
    return len(reports), records, messages


def count_json(path: str) -> tuple[int, int, int]:
    with open(path, encoding="utf-8") as f:
        reports = json.load(f)
    records = sum(len(r.get("records", [])) for r in reports)
    messages = sum(int(rec.get("count", 0)) for r in reports for rec in r.get("records", []))
    return len(reports), records, messages


def run_cli(paths: list[str], result: dict) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "parsedmarc")
    if not os.path.exists(exe):
        result["problems"].append(f"{exe} not found ({INSTALL})")
        return
    with tempfile.TemporaryDirectory(prefix="parsedmarc-bench-") as tmp:
        out_dir = os.path.join(tmp, "out")
        stdout_path = os.path.join(tmp, "stdout")
        stderr_path = os.path.join(tmp, "stderr")

        # Start-up alone: the same imports, no work.
        startup, _, _ = run_child([exe, "--version"], stdout_path, stderr_path)
        result["startup_seconds"] = round(startup, 4)

        cmd = [exe, "--offline", "-s", "-o", out_dir] + paths
        wall, code, maxrss_kib = run_child(cmd, stdout_path, stderr_path)
        result["seconds"] = round(wall, 4)
        result["exit_code"] = code
        result["peak_rss_mib"] = round(maxrss_kib / 1024, 1)
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        failed = [line for line in stderr.splitlines() if "Failed to parse" in line]
        result["failed_files"] = len(failed)
        if code != 0:
            result["problems"].append(f"parsedmarc exited {code}: {stderr[-500:].strip()}")
        if failed:
            result["problems"].append(f"{len(failed)} files not parsed, first: {failed[0][:300]}")
        elif stderr.strip():
            result["stderr"] = stderr[-500:].strip()
        csv_path = os.path.join(out_dir, "aggregate.csv")
        json_path = os.path.join(out_dir, "aggregate.json")
        try:
            if os.path.exists(csv_path):
                counts = count_csv(csv_path)
            else:
                counts = count_json(json_path)
            result["reports_parsed"], result["records"], result["messages"] = counts
        except (OSError, ValueError) as e:
            result["problems"].append(f"no readable output in {out_dir}: {e}")


def run_api(paths: list[str], result: dict) -> None:
    import parsedmarc  # already imported by main(), which timed it

    files = list_files(paths)
    reports = records = messages = 0
    seen = set()
    started = time.perf_counter()
    for path in files:
        try:
            parsed = parsedmarc.parse_report_file(path, offline=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported, not counted
            result["failed_files"] += 1
            if result["failed_files"] == 1:
                result["problems"].append(f"failed to parse {path}: {e}"[:300])
            continue
        if parsed.get("report_type") != "aggregate":
            continue
        report = parsed["report"]
        meta = report["report_metadata"]
        key = (meta["org_name"], meta["report_id"])
        if key in seen:
            continue
        seen.add(key)
        reports += 1
        records += len(report["records"])
        messages += sum(int(r["count"]) for r in report["records"])
    result["seconds"] = round(time.perf_counter() - started, 4)
    result["exit_code"] = 0
    result["peak_rss_mib"] = round(self_peak_rss_kib() / 1024, 1)
    result["reports_parsed"], result["records"], result["messages"] = reports, records, messages
    if result["failed_files"]:
        result["problems"].insert(0, f"{result['failed_files']} files not parsed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="report files, or directories of them")
    parser.add_argument("--mode", choices=["cli", "api"], default="cli")
    parser.add_argument("--expect-reports", type=int)
    parser.add_argument("--expect-records", type=int)
    parser.add_argument("--expect-messages", type=int)
    args = parser.parse_args()

    result: dict = {
        "tool": "parsedmarc",
        "version": None,
        "mode": args.mode,
        "seconds": None,
        "startup_seconds": None,
        "peak_rss_mib": None,
        "reports_parsed": None,
        "records": None,
        "messages": None,
        "files": len(list_files(args.paths)),
        "failed_files": 0,
        "exit_code": None,
        "ok": False,
        "problems": [],
    }
    try:
        started = time.perf_counter()
        from parsedmarc.constants import __version__  # imports the package

        result["version"] = __version__
        if args.mode == "api":
            result["startup_seconds"] = round(time.perf_counter() - started, 4)
    except ImportError:
        result["problems"].append(f"parsedmarc is not installed for {sys.executable} ({INSTALL})")
        print(json.dumps(result))
        return 0

    if args.mode == "cli":
        run_cli(args.paths, result)
    else:
        run_api(args.paths, result)

    for what, expected in (
        ("reports_parsed", args.expect_reports),
        ("records", args.expect_records),
        ("messages", args.expect_messages),
    ):
        if expected is not None and result[what] != expected:
            result["problems"].append(f"{what}: {result[what]}, expected {expected}")
    result["ok"] = not result["problems"] and result["seconds"] is not None

    print(json.dumps(result))
    seconds = result["seconds"]
    records = result["records"] or 0
    rate = f"{records / seconds:.0f} records/s" if seconds else "?"
    print(
        f"  parsedmarc {result['version']} ({args.mode}): {seconds} s ({rate}), "
        f"start-up {result['startup_seconds']} s, peak RSS {result['peak_rss_mib']} MiB, "
        f"{result['reports_parsed']} reports / {records} records / {result['messages']} messages"
        + ("" if result["ok"] else f"; NOT COUNTED: {'; '.join(result['problems'])}"),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
