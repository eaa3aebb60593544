"""Load test of ``maskwatch serve``: N concurrent clients posting photos for a bounded time.

Starts a local server (``maskwatch serve`` in a subprocess, its own temporary event log) unless ``--url`` names
a running one, then runs ``--clients`` asyncio clients (httpx), each posting the photo to ``POST /api/v1/detect``
as soon as its previous answer arrived, for ``--duration`` seconds after a short warm-up. Reports requests/s,
latency p50/p95/p99 and the errors (any status but 200, and transport errors), by status.

Baseline, in this process after the load: ``Pipeline.process`` called back to back on the same decoded photo
(the library's own rate, no HTTP, no decoding); the ratio server / baseline is what serving costs. Both share the
same 2 cores, so run nothing else meanwhile.

    .venv/bin/python bench/serve_load.py                         # 8 clients, 20 s, the bundled group photo
    .venv/bin/python bench/serve_load.py --clients 16 --duration 30 --json runs/serve_load.json
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8000 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

os.environ["MASKWATCH_QUIET"] = "1"

from maskwatch.serve.local import local_server

SAMPLE = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "samples" / "group.jpg"


async def load(url: str, body: bytes, clients: int, duration: float, warmup: float, headers: dict) -> dict:
    latencies: list[float] = []
    status: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) as http:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def client() -> None:
            while (t := time.perf_counter()) < stop_at:
                try:
                    r = await http.post("/api/v1/detect?source=bench", content=body)
                    code: int | str = r.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                if t >= measure_from:
                    latencies.append(time.perf_counter() - t)
                    status[code] += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    ok = status.get(200, 0)
    lat = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "clients": clients,
        "duration_s": duration,
        "requests": int(sum(status.values())),
        "ok": ok,
        "errors": int(sum(status.values()) - ok),
        "status": {str(k): v for k, v in status.items()},
        "requests_per_s": round(ok / duration, 2),
        "latency_ms": {q: round(float(np.percentile(lat, p)), 1) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
    }


def baseline(image_path: Path, seconds: float) -> dict:
    from PIL import Image

    from maskwatch.detect.pipeline import load_pipeline

    pipeline = load_pipeline()
    image = np.asarray(Image.open(image_path).convert("RGB"))
    pipeline.process(image)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        pipeline.process(image)
        n += 1
    return {"images_per_s": round(n / (time.perf_counter() - start), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--image", type=Path, default=SAMPLE)
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--api-key")
    ap.add_argument("--queue", type=int, default=16, help="--queue of the server started here")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    body = args.image.read_bytes()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if args.url:
            url = args.url.rstrip("/")
        else:
            url = stack.enter_context(local_server(Path(tmp) / "events.sqlite", "--queue", str(args.queue))).url
        result = asyncio.run(load(url, body, args.clients, args.duration, args.warmup, headers))
    result["image"] = str(args.image)
    if not args.no_baseline:
        result["baseline"] = baseline(args.image, min(args.duration, 10.0))
        result["ratio_server_vs_library"] = round(result["requests_per_s"] / result["baseline"]["images_per_s"], 3)
    lat = result["latency_ms"]
    print(
        f"{args.clients} clients, {args.duration:.0f} s: {result['requests_per_s']} req/s, "
        f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
        f"errors {result['errors']} of {result['requests']} {result['status']}"
    )
    if "baseline" in result:
        print(
            f"library baseline (Pipeline.process, same photo, no HTTP): {result['baseline']['images_per_s']} img/s "
            f"-> server/library ratio {result['ratio_server_vs_library']}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
