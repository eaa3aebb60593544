"""The shared event store under concurrent writers: SQLite (a WAL file, ``synchronous=FULL``) and PostgreSQL (a real
server, ``fsync`` and ``synchronous_commit`` on) in the same run, the same ``EventStore.add`` on both.

``--writers`` concurrent writers (processes by default, like several ``maskwatch serve`` on one store; ``--threads``:
threads of one process, like one server's worker threads) each commit events one at a time, as fast as they can,
for ``--duration`` seconds after a common start. Reported per backend: events/s committed (all writers together),
commit latency p50/p95/p99 (the time ``add`` takes: an event is acknowledged only after it), CPU-seconds per 1000
events of the writers themselves (getrusage, their start-up included; the PostgreSQL server's own CPU is not in
it), and the ratios
PostgreSQL / SQLite. Every event is counted back from the store at the end (lost must be 0).

PostgreSQL is started for the run with tests/postgres_server.py (initdb in a temporary folder; as nobody under
root) unless ``--postgres URL`` names one (a new database is made on it). Both share this machine's cores: run
nothing else meanwhile.

    .venv/bin/python bench/store_writers.py                      # 8 writer processes, 10 s per backend
    .venv/bin/python bench/store_writers.py --threads --duration 20 --json runs/store_writers.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # postgres_server.py: the tests' throwaway PostgreSQL


def writer(url: str, start_at: float, seconds: float, name: str) -> list[float]:
    """Commit events from ``start_at`` for ``seconds``; the latency of each commit in seconds."""
    from maskwatch.serve.store import Event, EventStore

    store = EventStore(url)
    latencies = []
    try:
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        while (t := time.perf_counter()) and time.time() < end:
            store.add(Event(name, "detect", {"with_mask": 1, "without_mask": 2}, 640, 480))
            latencies.append(time.perf_counter() - t)
    finally:
        store.close()
    return latencies


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(url: str, writers: int, seconds: float, threads: bool) -> dict:
    from maskwatch.serve.store import EventStore

    EventStore(url).close()  # the schema, once, before the clock starts
    start_at = time.time() + (1.0 if threads else 4.0)  # time for spawned processes to import
    cpu0 = _cpu()
    if threads:
        results: list[list[float]] = [[] for _ in range(writers)]

        def one(i: int) -> None:
            results[i] = writer(url, start_at, seconds, f"w{i}")

        pool = [threading.Thread(target=one, args=(i,)) for i in range(writers)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    else:
        with multiprocessing.get_context("spawn").Pool(writers) as procs:
            results = procs.starmap(writer, [(url, start_at, seconds, f"w{i}") for i in range(writers)])
    cpu = _cpu() - cpu0
    lat = sorted(x for r in results for x in r)
    store = EventStore(url)
    kept = store.stats(start_at - 60, time.time() + 60, "day")["totals"]["images"]
    store.close()

    def pct(q: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2)

    return {
        "events": len(lat),
        "events_per_s": round(len(lat) / seconds, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "writer_cpu_s_per_1000": round(1000 * cpu / max(1, len(lat)), 3),
        "lost": len(lat) - kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writing per backend")
    parser.add_argument("--threads", action="store_true", help="threads of one process (default: processes)")
    parser.add_argument("--postgres", help="a running PostgreSQL server's URL (default: start one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from postgres_server import new_database, postgres_server

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="store-writers-")))
        server = args.postgres or stack.enter_context(postgres_server())
        urls = {"sqlite": f"sqlite:///{folder / 'events.sqlite'}", "postgresql": new_database(server)}
        out = {name: run(url, args.writers, args.duration, args.threads) for name, url in urls.items()}
    kind = "threads" if args.threads else "processes"
    print(f"{args.writers} writer {kind}, {args.duration:g} s each backend, one commit per event")
    print(f"{'':12}{'events/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'cpu s/1k':>10}{'lost':>6}")
    for name, r in out.items():
        print(
            f"{name:12}{r['events_per_s']:>10}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}"
            f"{r['writer_cpu_s_per_1000']:>10}{r['lost']:>6}"
        )
    pg, lite = out["postgresql"], out["sqlite"]
    ratio = {
        "events_per_s": round(pg["events_per_s"] / lite["events_per_s"], 2),
        "p95_ms": round(pg["p95_ms"] / lite["p95_ms"], 2),
    }
    print(f"postgresql / sqlite: events/s x{ratio['events_per_s']}, p95 commit latency x{ratio['p95_ms']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"writers": args.writers, "mode": kind, **out, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
