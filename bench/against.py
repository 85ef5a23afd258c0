"""`python -m bench.against [--ref REF] [--only import-csv,dispatch-smtp] [--rounds 5]`: this checkout against an
earlier commit, doing the same work, side by side in one run.

Each round runs `python -m bench.run --only ITEM --reps 1` once in a checkout of REF and once in this one, in
alternating order, and keeps bianmin's time of each; the figure is the median of the per-round ratios
(this / REF), so a shared machine's drift during the run hits both sides of a round alike. Both sides use this
interpreter and its packages (the lock), and share the generated inputs through BIANMIN_BENCH_CACHE.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REF = "69ac632"  # main before the restructure of issue 19: the speed its code without hacks is held to
DEFAULT_ITEMS = ("import-csv", "dispatch-smtp")


def _checkout(ref: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), ref],
                   check=True, capture_output=True, text=True)
    return into


def _remove(path: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def _one_run(tree: Path, item: str, *, orders: int, db: str, layout: str, env: dict[str, str]) -> float | None:
    """bianmin's median seconds for `item` measured by the bench of `tree`, or None if it failed."""
    results = tree / "bench" / "results"
    started = time.time()
    cmd = [sys.executable, "-m", "bench.run", "--orders", str(orders), "--db", db, "--only", item, "--reps", "1",
           "--no-flatness", "--layout", layout]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    # the day's results file of that checkout, written by this run (bench.run merges an --only run into it)
    suffix = "" if layout == "year" else f"-{layout}"
    files = [f for f in sorted(results.glob(f"*-{db}-{orders}{suffix}.json")) if f.stat().st_mtime >= started] \
        if results.exists() else []
    if proc.returncode != 0 or not files:
        print(f"{tree.name}: {item} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    row = json.loads(files[-1].read_text())["items"].get(item, {})
    return row.get("bianmin_median_s")


def compare(*, ref: str, items: list[str], rounds: int, orders: int, db: str, layout: str, log) -> dict:
    """Per item: this checkout's and REF's times per round and the median ratio this/REF."""
    out: dict = {"ref": ref, "head": _head(), "orders": orders, "db": db, "layout": layout, "rounds": rounds,
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "items": {}}
    with tempfile.TemporaryDirectory(prefix="bianmin-against-") as tmp:
        cache = os.environ.get("BIANMIN_BENCH_CACHE") or str(Path(tmp) / "cache")
        env = dict(os.environ, BIANMIN_BENCH_CACHE=cache, PREFECT_SERVER_ANALYTICS_ENABLED="false")
        old = _checkout(ref, Path(tmp) / "ref")
        try:
            for item in items:
                pairs: list[tuple[float, float]] = []
                for n in range(rounds):
                    sides = [("ref", old), ("this", ROOT)] if n % 2 == 0 else [("this", ROOT), ("ref", old)]
                    got = {name: _one_run(tree, item, orders=orders, db=db, layout=layout, env=env) for name, tree in sides}
                    log(f"{item} round {n + 1}/{rounds}: ref {got['ref']}, this {got['this']}")
                    if got["ref"] and got["this"]:
                        pairs.append((got["ref"], got["this"]))
                out["items"][item] = {
                    "ref_s": [p[0] for p in pairs], "this_s": [p[1] for p in pairs],
                    "ratio_median": statistics.median(t / r for r, t in pairs) if pairs else None,
                    "ratio_min": min(t / r for r, t in pairs) if pairs else None,
                    "ratio_max": max(t / r for r, t in pairs) if pairs else None}
        finally:
            _remove(old)
    return out


def _head() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def _shown(seconds: float) -> str:
    return f"{seconds:8.2f} s" if seconds >= 1 else f"{seconds * 1000:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.against", description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=DEFAULT_REF, help=f"the commit to compare with (default {DEFAULT_REF})")
    ap.add_argument("--only", default=",".join(DEFAULT_ITEMS), help="comma-separated bench.run item names")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--layout", choices=["year", "month"], default="year", help="as bench.run's --layout")
    args = ap.parse_args(argv)
    items = [n.strip() for n in args.only.split(",") if n.strip()]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results = compare(ref=args.ref, items=items, rounds=args.rounds, orders=args.orders, db=args.db,
                      layout=args.layout, log=log)
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"{date.today().isoformat()}-against-{args.ref}-{args.db}-{args.orders}-{args.layout}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"this checkout ({results['head']}) against {args.ref}, {args.db}, {args.orders} orders, "
          f"{args.rounds} rounds (ratio = this / {args.ref}, median [min-max] of the rounds)")
    for item, row in results["items"].items():
        if row["ratio_median"] is None:
            print(f"  {item:15s} failed")
            continue
        print(f"  {item:15s} {_shown(statistics.median(row['this_s']))} vs {_shown(statistics.median(row['ref_s']))}  "
              f"{row['ratio_median']:.2f}x [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]")
    log(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
