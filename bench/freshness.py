"""How fresh the ERP is under a steady stream of orders: each order timed from its webhook's 200 to its row in
the ERP's staging table, with the connector as production runs it.

    .venv/bin/python bench/freshness.py [--rate 100] [--seconds 60] [--workers 2] [--senders 8]

`connector web` (one process per core) and `--workers` `connector worker` processes on PostgreSQL (the
connector's database and the SQL staging ERP's) and Redis, on 127.0.0.1; signed Shopify orders/create
webhooks (distinct orders) are offered at `--rate` a second for `--seconds`, on a schedule (a late send is
not made up for by a burst). Each order's latency is the ERP row's `created_at` (the connector's clock,
the same machine's) less the moment its 200 came back. Prints offered vs reached orders/s and the p50, p95
and p99 latencies. Everything it makes is removed at the end. Issue 18's target: p99 <= 1 s at 100 orders/s
for 5 minutes with two workers.
"""

from __future__ import annotations

import argparse
import copy
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import BIN, ORDER, SECRET, distinct_buyer, fresh_connector, setup_store  # bench/pipeline.py

from platforms.signatures import sign


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"connector web exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"connector web not ready after 60 s:\n{log.read_text()[-3000:]}")


def _offer(url: str, rate: float, seconds: float, senders: int) -> tuple[dict[str, float], int]:
    """Send the orders on schedule; {ERP external ref: when its 200 came back (epoch s)} and the failures."""
    total = int(rate * seconds)
    answered: dict[str, float] = {}
    failed = [0]
    lock = threading.Lock()
    start = time.time() + 0.5
    next_n = [0]

    def sender() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next_n[0]
                next_n[0] += 1
            if n >= total:
                return
            due = start + n / rate
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            order = copy.deepcopy(ORDER)
            order["id"] = 9_000_000 + n
            order["name"] = f"#F{n}"
            distinct_buyer(order, n)
            body = json.dumps(order).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": sign(SECRET, body),
                "X-Shopify-Shop-Domain": "bench.myshopify.com",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": str(uuid.uuid4()),
            }
            try:
                answer = session.post(f"{url}/webhooks/shopify/bench", data=body, headers=headers, timeout=10)
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                if ok:
                    answered[f"shopify:bench:{order['id']}"] = time.time()
                else:
                    failed[0] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answered, failed[0]


def _landed(erp_url: str, refs: set[str], patience: float) -> dict[str, float]:
    """{external ref: the ERP row's created_at (epoch s)} once every order is in, or after `patience` s."""
    engine = _engine(erp_url)
    deadline = time.monotonic() + patience
    found: dict[str, float] = {}
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT external_ref, created_at FROM erp_orders")).all()
            found = {ref: at.replace(tzinfo=at.tzinfo or UTC).timestamp() for ref, at in rows if ref in refs}
            if len(found) >= len(refs):
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return found


def _measure(
    env: dict, instance: Path, procs: list[subprocess.Popen], rate: float, seconds: float, workers: int, senders: int
) -> None:
    port = _free_port()
    log = instance / "web.log"
    with log.open("w") as out:
        procs.append(
            subprocess.Popen(
                [str(BIN / "connector"), "web", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, procs[0], log)
    for n in range(workers):
        with (instance / f"worker{n}.log").open("w") as out:
            procs.append(
                subprocess.Popen([str(BIN / "connector"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    time.sleep(2)  # the workers connect and listen
    began = time.time()
    answered, failed = _offer(url, rate, seconds, senders)
    offered_for = time.time() - began
    landed = _landed(env["ERP_URL"], set(answered), patience=max(60.0, seconds))
    latencies = sorted(max(0.0, landed[ref] - at) for ref, at in answered.items() if ref in landed)
    last = max(landed.values(), default=began)
    reached = len(landed) / max(last - began, 1e-9)
    offered = len(answered) + failed
    print(
        f"offered   {offered} orders in {offered_for:.1f} s = {offered / offered_for:.1f} orders/s ({failed} not 200)"
    )
    print(f"reached   {len(landed)} of {len(answered)} in the ERP: {reached:.1f} orders/s (first offer to last row)")
    if len(latencies) > 1:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p95, p99, most = (round(x * 1000) for x in (q[49], q[94], q[98], latencies[-1]))
        print(f"200 -> ERP row   p50 {p50} ms   p95 {p95} ms   p99 {p99} ms   max {most} ms")
        verdict = "PASS" if q[98] <= 1.0 and len(landed) == len(answered) else "MISS"
        print(f"target p99 <= 1 s with every order in: {verdict}")


def run(rate: float, seconds: float, workers: int, senders: int) -> None:
    with fresh_connector("bench_fresh") as env:
        setup_store(env)
        instance = Path(env["CONNECTOR_INSTANCE_PATH"])
        procs: list[subprocess.Popen] = []
        try:
            _measure(env, instance, procs, rate, seconds, workers, senders)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="orders offered a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=8, help="threads sending (enough to keep to the rate)")
    args = parser.parse_args()
    run(args.rate, args.seconds, args.workers, args.senders)


if __name__ == "__main__":
    main()
