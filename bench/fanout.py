"""`python -m bench.fanout [--offices 20] [--reps 3]`: what splitting a check per office costs, against the
offices' own work.

On a generated month (SQLite, `--offices` offices), for chase-callbacks as of 2026-11-02 10:00:
- work: each office's part called directly (`flows.fanout.run_office_part`), the sum over the offices;
- mapped: the same parts as mapped Prefect tasks in one flow run (one process; a temporary Prefect server,
  as `bianmin run` uses), the flow run's wall time.
The per-office child run on a worker (`office-check`, what the group mode uses) is measured by
tests/e2e/test_group_workers.py, which prints its figures: a child run is a process of its own on a worker.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

AS_OF = datetime(2026, 11, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offices", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from flows.serve import prepare_for_run
    from flows.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    settings = Settings(_env_file=None, data_dir=home, locale="en")
    target = prepare_for_run(settings)  # a temporary Prefect server, started before Prefect is imported

    from commands.generator import generate_month
    from flows.runtime import Runtime, set_runtime
    from models.ledger.db import upgrade

    upgrade(settings.effective_database_url)
    rt = Runtime(settings)
    set_runtime(rt)
    generate_month(rt.sessions, calendar=rt.calendar, month="2026-10", offices=args.offices, orders_per_office=40)

    from prefect import flow

    from flows.fanout import _office_part, office_codes, run_office_part

    offices = office_codes(rt)

    @flow(name="bench-mapped-offices")
    def mapped(offices: list[str]) -> list:
        return _office_part.map("chase-callbacks", offices, AS_OF, None).result()

    target.wait_ready()
    mapped(offices)  # the first run also registers the flow and warms the server
    work, whole = [], []
    for _ in range(args.reps):
        started = time.perf_counter()
        for office in offices:
            run_office_part(rt, "chase-callbacks", office, AS_OF, None)
        work.append(time.perf_counter() - started)
        started = time.perf_counter()
        mapped(offices)
        whole.append(time.perf_counter() - started)
    w, m = statistics.median(work), statistics.median(whole)
    n = len(offices)
    print(f"{n} offices, chase-callbacks, median of {args.reps}: work {w * 1000 / n:.1f} ms per office; "
          f"mapped tasks in one flow run {m * 1000 / n:.1f} ms per office, "
          f"overhead {(m - w) * 1000 / n:.1f} ms per office = {(m - w) / w:.1f}x the work")
    rt.close()


if __name__ == "__main__":
    main()
