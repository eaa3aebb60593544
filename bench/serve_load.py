"""Load test of ``maskwatch serve``: N concurrent clients posting photos for a bounded time.

Starts a local server (``maskwatch serve`` in a subprocess, its own temporary event log) unless ``--url`` names
a running one, then runs ``--clients`` asyncio clients (httpx), each posting the photo to ``POST /api/v1/detect``
as soon as its previous answer arrived, for ``--duration`` seconds after a short warm-up. Reports requests/s,
latency p50/p95/p99 and the errors (any status but 200, and transport errors), by status.

``--retry`` says what a client does with a 503 or 429: ``none`` (default) counts it and posts the next photo,
``impatient`` posts the same photo again at once, ``honour`` sleeps ``Retry-After`` seconds first. With retries,
``wait_ms`` is the time from a photo's first attempt to its 200 (what a user waits), ``latency_ms`` that of each
attempt; ``requests_per_s`` is always served photos (200s) per second.

Baseline, in this process after the load: ``Pipeline.process`` called back to back on the same decoded photo
(the library's own rate, no HTTP, no decoding); the ratio server / baseline is what serving costs. Both share the
same 2 cores, so run nothing else meanwhile.

    .venv/bin/python bench/serve_load.py                         # 8 clients, 20 s, the bundled group photo
    .venv/bin/python bench/serve_load.py --clients 16 --duration 30 --json runs/serve_load.json
    .venv/bin/python bench/serve_load.py --clients 32 --retry impatient --no-baseline   # a retry storm
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


RETRY = ("none", "impatient", "honour")
REFUSED = (503, 429)


async def load(
    url: str, body: bytes, clients: int, duration: float, warmup: float, headers: dict, retry: str = "none"
) -> dict:
    latencies: list[float] = []  # each attempt
    waits: list[float] = []  # first attempt of a photo -> its 200
    status: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) as http:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def client() -> None:
            while (first := time.perf_counter()) < stop_at:
                while (t := time.perf_counter()) < stop_at:
                    retry_after = None
                    try:
                        r = await http.post("/api/v1/detect?source=bench", content=body)
                        code: int | str = r.status_code
                        retry_after = r.headers.get("retry-after")
                    except httpx.HTTPError as exc:
                        code = type(exc).__name__
                    if t >= measure_from:
                        latencies.append(time.perf_counter() - t)
                        status[code] += 1
                    if code == 200 and first >= measure_from:
                        waits.append(time.perf_counter() - first)
                    if retry == "none" or code not in REFUSED:
                        break
                    if retry == "honour":
                        seconds = float(retry_after) if retry_after and retry_after.isdigit() else 1.0
                        await asyncio.sleep(min(seconds, max(0.0, stop_at - time.perf_counter())))

        await asyncio.gather(*(client() for _ in range(clients)))
    ok = status.get(200, 0)

    def quantiles(values: list[float]) -> dict:
        ms = np.array(values) * 1000 if values else np.zeros(1)
        return {q: round(float(np.percentile(ms, p)), 1) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}

    return {
        "clients": clients,
        "retry": retry,
        "duration_s": duration,
        "requests": int(sum(status.values())),
        "ok": ok,
        "errors": int(sum(status.values()) - ok),
        "status": {str(k): v for k, v in status.items()},
        "requests_per_s": round(ok / duration, 2),
        "latency_ms": quantiles(latencies),
        "wait_ms": quantiles(waits),
    }


def baseline(image_path: Path, seconds: float) -> dict:
    from PIL import Image

    from maskwatch.detect.pipeline import load_pipeline
    from maskwatch.runtime.classifiers import load_classifier

    pipeline = load_pipeline(classifier=load_classifier())  # the server's default pipeline (as cli/common loads it)
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
    ap.add_argument("--retry", choices=RETRY, default="none", help="what a client does with a 503 or 429")
    ap.add_argument("--server-arg", action="append", default=[], help="another option for the server started here")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    body = args.image.read_bytes()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if args.url:
            url = args.url.rstrip("/")
        else:
            url = stack.enter_context(
                local_server(Path(tmp) / "events.sqlite", "--queue", str(args.queue), *args.server_arg)
            ).url
        result = asyncio.run(load(url, body, args.clients, args.duration, args.warmup, headers, args.retry))
    result["image"] = str(args.image)
    if not args.no_baseline:
        result["baseline"] = baseline(args.image, min(args.duration, 10.0))
        result["ratio_server_vs_library"] = round(result["requests_per_s"] / result["baseline"]["images_per_s"], 3)
    lat = result["latency_ms"]
    wait = result["wait_ms"]
    print(
        f"{args.clients} clients, retry {args.retry}, {args.duration:.0f} s: {result['requests_per_s']} served/s, "
        f"attempts p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms; "
        f"wait for a 200 p50 {wait['p50']} ms, p95 {wait['p95']} ms; "
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
