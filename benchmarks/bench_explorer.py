"""Size and load time of a zoo explorer page (``archsim zoo map``) in headless Chromium.

    .venv/bin/python benchmarks/bench_explorer.py zoo.html [--runs 5] [--chromium /usr/bin/chromium]
        [--screenshot figures/zoo_explorer.png --click tv:resnet50 --against timm:vit_base_patch16_224]

Load time is measured from navigation (``page.goto`` of the file:// URL, a fresh page each run)
to the moment the page's script sets ``window.zooReady = true`` (its data inflated, the map drawn
by plotly, the search list filled).  Needs playwright-python and a Chromium (the system one:
``apt-get install chromium``; ``playwright install`` is not needed).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--click", default=None, help="the model whose row is clicked before the screenshot")
    ap.add_argument("--against", default=None, help="the second model chosen in the side panel")
    ap.add_argument("--keep-zoom", action="store_true", help="screenshot the map zoomed to --click, not whole")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    url = args.page.resolve().as_uri()
    times, script_ms = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        for _ in range(args.runs):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function("window.zooReady === true", timeout=120_000, polling=10)
            times.append(time.perf_counter() - t0)
            script_ms.append(page.evaluate("window.zooState.readyMs"))
            if errors:
                raise SystemExit(f"console errors: {errors}")
            if args.screenshot and len(times) == args.runs:
                shot(page, args)
            page.close()
        version = browser.version
        browser.close()
    print(json.dumps({
        "page": str(args.page), "bytes": args.page.stat().st_size, "chromium": version, "runs": args.runs,
        "ready_s_median": round(statistics.median(times), 3), "ready_s_max": round(max(times), 3),
        "ready_s_all": [round(t, 3) for t in times],
        "script_ms_median": round(statistics.median(script_ms)),
    }, indent=2))


def shot(page, args) -> None:
    """Find ``--click``, click its diagonal cell on the map, pick ``--against``, save the screenshot."""
    if args.click:
        page.evaluate("(n) => window.zooSearch(n)", args.click)  # zooms to it
        page.wait_for_timeout(500)
        box = page.evaluate("""(n) => {
            const gd = document.getElementById('zoo-map'), fl = gd._fullLayout, i = window.zooState.highlight;
            const r = gd.getBoundingClientRect();
            return {x: r.left + fl.xaxis._offset + fl.xaxis.l2p(i), y: r.top + fl.yaxis._offset + fl.yaxis.l2p(i)};
        }""", args.click)
        page.mouse.click(box["x"], box["y"])
    if args.against:
        page.fill("#compare", args.against)
        page.dispatch_event("#compare", "change")
    if not args.keep_zoom:  # the whole map again, the clicked model's row and column still marked
        page.evaluate("Plotly.relayout(document.getElementById('zoo-map'), "
                      "{'xaxis.autorange': true, 'yaxis.autorange': 'reversed'})")
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(args.screenshot))


if __name__ == "__main__":
    main()
