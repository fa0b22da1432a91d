"""Designer benchmark: a 300-node journey opened on the canvas, and how fast it validates.

    python bench/designer.py [--nodes 300] [--runs 5]

Builds a valid journey of `--nodes` steps (a trigger, then chains of conditions, waits, sends
and profile updates that all end in exits), stores it in a fresh SQLite database under a
temporary home (Redis: REDIS_URL, default database 14 of the local server), serves the app
from a thread and opens the journey's canvas in Debian's Chromium through Playwright. It prints
the time from navigation to an opened canvas (every node in view drawn: the canvas draws only
the cells in view), the time Fit takes to draw every node, and the server's time to validate
the document, in process and through the autosave endpoint. The same journey without a layout
(as another tool would send it) is opened too: the canvas arranges it on open.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.accounts import create_user  # noqa: E402
from engine.channels import create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.journeys import lifecycle
from engine.language import graph
from engine.migrate import upgrade  # noqa: E402
from engine.models import Role  # noqa: E402
from engine.settings import load_settings  # noqa: E402

PASSWORD = "benchmark password 1"

# True once every step whose box meets the visible canvas has its view on the page.
IN_VIEW_DRAWN = """() => {
  const d = window.throughlineDesigner;
  if (!d) return false;
  const area = d.graph.getGraphArea();
  const wanted = d.graph.getNodes().filter((n) => area.isIntersectWithRect(n.getBBox()));
  return wanted.length > 0 && wanted.every(
    (n) => document.querySelector(`#canvas [data-node-id="${n.id}"]`));
}"""


def open_canvas(page: Any, url: str) -> float:
    """Milliseconds from navigation to an opened canvas: every step in view drawn (the canvas
    draws only what is in view)."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#designer[data-ready=true]", state="attached")
    page.wait_for_function(IN_VIEW_DRAWN, polling="raf")
    return (time.perf_counter() - started) * 1000


def big_journey(size: int) -> dict[str, Any]:
    """A valid document of exactly `size` nodes."""
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}}
    ]
    edges: list[dict[str, Any]] = []
    cycle = ["condition", "wait", "send", "update_profile"]
    previous, port = "start", None
    n = 0
    while len(nodes) < size - 1:
        kind = cycle[n % len(cycle)]
        node_id = f"{kind}_{n}"
        config: dict[str, Any] = {
            "condition": {
                "rule": {"field": "customer.traits.tier", "op": "eq", "value": "vip"}
            },
            "wait": {"duration": "PT1H"},
            "send": {
                "channel": "email",
                "message": {"subject": "Hello {{ customer.traits.first_name }}"},
            },
            "update_profile": {"set": {"step": n}},
        }[kind]
        nodes.append({"id": node_id, "type": kind, "config": config})
        edge = {"from": previous, "to": node_id}
        if port:
            edge["port"] = port
        edges.append(edge)
        if kind == "condition":
            exit_id = f"exit_{n}"
            if len(nodes) < size - 1:
                nodes.append({"id": exit_id, "type": "exit", "config": {}})
                edges.append({"from": node_id, "port": "false", "to": exit_id})
            previous, port = node_id, "true"
        else:
            previous, port = node_id, None
        n += 1
    nodes.append({"id": "end", "type": "exit", "config": {}})
    edge = {"from": previous, "to": "end"}
    if port:
        edge["port"] = port
    edges.append(edge)
    dangling = [
        n
        for n in nodes
        if n["type"] == "condition"
        and not any(e["from"] == n["id"] and e.get("port") == "false" for e in edges)
    ]
    for node in dangling:
        edges.append({"from": node["id"], "port": "false", "to": "end"})
    layout = {
        node["id"]: {"x": 80 + (i % 10) * 300, "y": 60 + (i // 10) * 150}
        for i, node in enumerate(nodes)
    }
    return {
        "schema": graph.SCHEMA,
        "name": f"{size} steps",
        "nodes": nodes,
        "edges": edges,
        "layout": layout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="throughline-bench-designer-")
    env = {**os.environ, "THROUGHLINE_HOME": home}
    env.pop("DATABASE_URL", None)
    env.setdefault(
        "REDIS_URL", "redis://127.0.0.1:6379/14"
    )  # sign-in limits live in Redis
    settings = load_settings(env)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    document = big_journey(args.nodes)
    with database.session() as session:
        create_channel(
            session, SecretBox(settings.encryption_key), "email", "Email", "email"
        )
        create_user(session, "bench@example.com", Role.marketer, PASSWORD)
        ctx = lifecycle.check_context(session)
        journey, problems = lifecycle.create_journey(session, document, ctx, None)
        bare = {**document, "name": f"{args.nodes} steps, no layout", "layout": {}}
        unarranged, _ = lifecycle.create_journey(session, bare, ctx, None)
        session.commit()
        journey_id, unarranged_id = journey.id, unarranged.id
    assert not problems and len(document["nodes"]) == args.nodes

    with database.session() as session:
        ctx = lifecycle.check_context(session)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        _doc, found = graph.check(document, ctx)
        timings.append((time.perf_counter() - started) * 1000)
    assert not found
    print(f"{args.nodes} nodes, {len(document['edges'])} edges")
    print(
        f"validation in process: median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms"
    )

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from webapp import create_app

    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/login")
        page.get_by_label("Email").fill("bench@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/journeys/")
        opened: list[float] = []
        marks: list[dict[str, float]] = []
        drawn: list[int] = []
        whole: list[float] = []
        for _ in range(args.runs):
            opened.append(open_canvas(page, f"{base}/journeys/{journey_id}"))
            drawn.append(
                page.evaluate(
                    "document.querySelectorAll('#canvas [data-node-id]').length"
                )
            )
            page.wait_for_selector("#minimap .x6-graph-svg", state="attached")
            marks.append(
                page.evaluate(
                    "Object.fromEntries(performance.getEntriesByType('mark')"
                    ".map(m => [m.name, m.startTime]).concat([['domContentLoaded', "
                    "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd]]))"
                )
            )
            # Then Fit: the whole journey on screen, every step drawn.
            started = time.perf_counter()
            page.get_by_role("button", name="Fit").click()
            page.wait_for_function(
                f"document.querySelectorAll('#canvas [data-node-id]').length >= {args.nodes}",
                polling="raf",
            )
            whole.append((time.perf_counter() - started) * 1000)
        # The journey without a layout: opened (arranged on open), then Arrange pressed again.
        arranged: list[float] = []
        rearranged: list[float] = []
        for _ in range(args.runs):
            arranged.append(open_canvas(page, f"{base}/journeys/{unarranged_id}"))
            rearranged.append(
                page.evaluate(
                    """() => { const started = performance.now();
                       document.querySelector('[data-action="layout"]').click();
                       return performance.now() - started; }"""
                )
            )
        page.goto(f"{base}/journeys/{journey_id}")
        page.wait_for_selector("#designer[data-ready=true]", state="attached")
        saves = []
        for _ in range(args.runs):
            started = time.perf_counter()
            page.evaluate("window.throughlineDesigner.save()")
            saves.append((time.perf_counter() - started) * 1000)
        browser.close()
    server.shutdown()
    print(
        f"canvas opened (navigation to every node in view drawn): median "
        f"{statistics.median(opened):,.0f} ms, max {max(opened):,.0f} ms over {args.runs} loads "
        f"({statistics.median(drawn):.0f} of {args.nodes} steps in view); the first load, with "
        f"the browser's cache empty: {opened[0]:,.0f} ms"
    )
    print(
        f"Fit (the whole journey on screen, every node drawn): median "
        f"{statistics.median(whole):,.0f} ms, max {max(whole):,.0f} ms"
    )
    print(
        f"the same journey without a layout, arranged on open: median "
        f"{statistics.median(arranged):,.0f} ms, max {max(arranged):,.0f} ms; Arrange "
        f"(layout, routes and redraw of the whole journey): median "
        f"{statistics.median(rearranged):,.0f} ms"
    )
    phases = {
        name: statistics.median(m.get(name, float("nan")) for m in marks)
        for name in (
            "domContentLoaded",
            "throughline:draft-loaded",
            "throughline:drawn",
            "throughline:opened",
        )
    }
    print(
        "  of which (ms since navigation): page ready "
        f"{phases['domContentLoaded']:,.0f}, draft loaded {phases['throughline:draft-loaded']:,.0f}, "
        f"drawn {phases['throughline:drawn']:,.0f}, view set {phases['throughline:opened']:,.0f}"
    )
    print(
        f"autosave round trip (serialise, PUT, validate, store, answer): median "
        f"{statistics.median(saves):,.0f} ms, max {max(saves):,.0f} ms"
    )
    database.dispose()


if __name__ == "__main__":
    main()
