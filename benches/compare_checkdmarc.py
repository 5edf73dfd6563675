#!/usr/bin/env python3
"""Times checkdmarc on the bulk_check domain set, for comparison with mailshift.

Normally run by the bench, which generates the zones and serves them with NSD on 127.0.0.2:53:

    python3 -m venv target/bench-venv
    target/bench-venv/bin/pip install checkdmarc==6.0.4
    cargo bench --bench bulk_check -- --compare-checkdmarc

It can also be run by hand against a server that is already up (checkdmarc only talks to port 53):

    target/bench-venv/bin/python benches/compare_checkdmarc.py \
        --nameserver 127.0.0.2 --domains-file DIR/domains.txt

The domains file is the bench's (`name selectors=...`); checkdmarc gets the names only, since it
does not check DKIM. It is run the two ways users run it: in-process through
`checkdmarc.check_domains()` (counting the DNS messages it sends), and as the `checkdmarc`
command end to end (interpreter start-up and JSON output included). SMTP TLS probing is off,
which is checkdmarc's default (`--check-mx-tls` turns it on), so no connection is made to MX hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter


def read_domains(path: str) -> list[str]:
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def peak_rss_kib() -> float:
    """VmHWM of this process. (getrusage's ru_maxrss would include the parent's RSS at fork,
    which Linux carries across exec.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def count_queries():
    """Wraps dnspython's transports so every message sent is counted, by (name, type)."""
    import dns.query

    sent: Counter = Counter()

    def wrap(fn):
        def counted(q, *args, **kwargs):
            try:
                question = q.question[0]
                sent[(str(question.name).lower(), int(question.rdtype))] += 1
            except Exception:  # noqa: BLE001 - counting must never break the run
                sent[("?", 0)] += 1
            return fn(q, *args, **kwargs)

        return counted

    for transport in ("udp", "tcp", "https", "tls", "quic"):
        if hasattr(dns.query, transport):
            setattr(dns.query, transport, wrap(getattr(dns.query, transport)))
    return sent


def summarise(results) -> str:
    if isinstance(results, dict):
        results = [results]
    spf_ok = sum(1 for r in results if r.get("spf", {}).get("valid"))
    dmarc_ok = sum(1 for r in results if r.get("dmarc", {}).get("valid"))
    mx_hosts = sum(1 for r in results if r.get("mx", {}).get("hosts"))
    return f"SPF valid {spf_ok}, DMARC valid {dmarc_ok}, MX found {mx_hosts} of {len(results)}"


def run_api(domains: list[str], nameserver: str, timeout: float) -> None:
    sent = count_queries()
    import checkdmarc

    started = time.perf_counter()
    results = checkdmarc.check_domains(domains, nameservers=[nameserver], timeout=timeout)
    wall = time.perf_counter() - started
    total = sum(sent.values())
    repeated = sum(n - 1 for n in sent.values() if n > 1)
    maxrss = peak_rss_kib()
    n = len(domains)
    print(
        f"  checkdmarc {checkdmarc.__version__} (in-process check_domains): {wall:.3f} s "
        f"({n / wall:.0f} domains/s, {1000 * wall / n:.1f} ms/domain); "
        f"{total} DNS messages ({total / n:.1f}/domain, {repeated} repeats of an earlier question); "
        f"peak RSS {maxrss / 1024:.1f} MiB"
    )
    print(f"    results: {summarise(results)}")
    top = [f"{t}×{c}" for t, c in Counter(
        _type_name(rdtype) for (_, rdtype) in sent.elements()
    ).most_common()]
    print(f"    messages by type: {', '.join(top)}")


def _type_name(rdtype: int) -> str:
    try:
        import dns.rdatatype

        return dns.rdatatype.to_text(rdtype)
    except Exception:  # noqa: BLE001
        return str(rdtype)


def run_cli(domains: list[str], nameserver: str, timeout: float) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "checkdmarc")
    if not os.path.exists(exe):
        print(f"  checkdmarc CLI: {exe} not found, skipped")
        return
    with tempfile.TemporaryDirectory(prefix="checkdmarc-bench-") as tmp:
        listing = os.path.join(tmp, "domains.txt")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("\n".join(domains) + "\n")
        out = os.path.join(tmp, "out.json")
        # `-o` and `--nameserver` take several values: the positional list goes first.
        cmd = [exe, listing, "--timeout", str(timeout), "--nameserver", nameserver, "-o", out]
        time_bin = "/usr/bin/time"
        if os.path.exists(time_bin):
            cmd = [time_bin, "-f", "maxrss_kib=%M"] + cmd
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        wall = time.perf_counter() - started
        rss = next(
            (line.split("=", 1)[1] for line in proc.stderr.splitlines() if line.startswith("maxrss_kib=")),
            None,
        )
        summary = ""
        try:
            with open(out, encoding="utf-8") as f:
                summary = summarise(json.load(f))
        except (OSError, ValueError) as e:
            summary = f"no output ({e}); stderr: {proc.stderr[-500:]}"
        n = len(domains)
        rss_text = f"{int(rss) / 1024:.1f} MiB" if rss and rss.strip().isdigit() else "?"
        print(
            f"  checkdmarc command (end to end, -o out.json): {wall:.3f} s ({n / wall:.0f} domains/s), "
            f"exit {proc.returncode}, max RSS {rss_text}"
        )
        print(f"    results: {summary}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nameserver", default="127.0.0.2", help="IP of the server (port 53)")
    parser.add_argument("--domains-file", required=True)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--no-api", action="store_true", help="skip the in-process run")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line run")
    args = parser.parse_args()
    try:
        import checkdmarc  # noqa: F401
    except ImportError:
        print(
            "  checkdmarc: not installed for this python; "
            "python3 -m venv target/bench-venv && target/bench-venv/bin/pip install checkdmarc==6.0.4"
        )
        return 0
    domains = read_domains(args.domains_file)
    if not args.no_api:
        run_api(domains, args.nameserver, args.timeout)
    if not args.no_cli:
        run_cli(domains, args.nameserver, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
