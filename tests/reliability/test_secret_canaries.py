"""Secret canaries: an SMTP password, a DingTalk token, a WeCom key, a generic webhook's secret path and the
PostgreSQL password, with every logger at DEBUG and every send failing (SMTP auth refused, connection refused,
no route to DingTalk/WeCom, the webhook answering 500).

Counted: canary occurrences in captured logs (in-process and a real `bianmin` process), exception and error
text, CLI output, every text column of every table, the files under the data folder (Prefect's database and
logs included), and what the receivers got. Must be 0.

bianmin's answer to STACK.md's warning (DingTalk's plugin logs its token URL at DEBUG): apprise's logger is kept
at WARNING whatever the operator sets, with no propagation; its warnings reach people only through the
scrubbed `last_error`. The test sets apprise to DEBUG first and checks bianmin put it back.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from flows.callbacks import run_chase_replies
from flows.dispatch import run_dispatch
from flows.runtime import Runtime
from flows.settings import DEFAULT_ROUTES
from models.ledger.db import make_engine, transaction
from models.ledger.tables import Base
from notifications.delivery import config_problems, config_tags, deliver
from notifications.masking import privacy_url
from notifications.outbox import routed_tags
from tests.builders import at, request_for, setup_office
from tests.servers import free_port, write_apprise_config

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
CHECKS_AT = at("2026-11-25", "11:00")
CANARIES = {
    "smtp password": "CANARYsmtp7f3e9a",
    "dingtalk token": "CANARYding4c1b2d",
    "wecom key": "CANARYwecom8e5f0a",
    "webhook path": "CANARYpath2d9c7b",
    "postgresql password": "CANARYpg6a0e3f",
}
LOGGERS = ("", "apprise", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "prefect", "urllib3", "psycopg",
           "bianmin")
SITE = """import logging
logging.basicConfig(level=logging.DEBUG)
for name in {loggers!r}:
    logging.getLogger(name).setLevel(logging.DEBUG)
"""


def secret_urls(smtp_server, http_server) -> list[str]:
    pw = CANARIES["smtp password"]
    mail = "from=bianmin@example.com&to=ops@example.com&mode=insecure"
    return [
        f"mailto://bianmin:{pw}@127.0.0.1:{smtp_server.port}?{mail}",  # the sink offers no AUTH: login fails
        f"mailto://bianmin:{pw}@127.0.0.1:{free_port()}?{mail}",  # connection refused
        f"dingtalk://{CANARIES['dingtalk token']}/",  # the plugin takes no host: it fails on the way out
        f"wecombot://{CANARIES['wecom key']}",
        http_server.url(f"/hook/{CANARIES['webhook path']}"),  # answers 500
    ]


def occurrences(places: dict[str, str]) -> dict[str, int]:
    return {f"{name}: {place}": text.count(canary) for place, text in places.items()
            for name, canary in CANARIES.items() if canary in text}


def database_text(url: str) -> str:
    """Every value of every table, as text."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(json.dumps([list(map(str, row)) for row in conn.execute(select(table))],
                                        ensure_ascii=False) for table in Base.metadata.sorted_tables)
    finally:
        engine.dispose()


def files_text(folder: Path, *, leave_out: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in folder.rglob("*")
            if p.is_file() and p != leave_out}


def test_no_canary_secret_appears_in_logs_errors_output_database_or_bodies(db_url, settings, engine, smtp_server,
                                                                          http_server, tmp_path, caplog, capfd,
                                                                          figure):
    postgres = db_url.startswith("postgresql")
    if postgres:  # trust auth ignores the password; bianmin still holds it in its settings and URL
        db_url = make_url(db_url).set(password=CANARIES["postgresql password"]).render_as_string(hide_password=False)
    canaries = dict(CANARIES) if postgres else {k: v for k, v in CANARIES.items() if k != "postgresql password"}
    http_server.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml",
                                  {tag: secret_urls(smtp_server, http_server)
                                   for tag in sorted(set(routed_tags(DEFAULT_ROUTES)) | {"administration"})})
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    rt = Runtime(settings.model_copy(update={"database_url": db_url, "apprise_config": config, "locale": "en"}))
    with transaction(engine) as s:
        o = setup_office(s)
        request_for(s, o, at=at("2026-11-25", "10:00"))

    # in this process
    errors: list[str] = []
    try:
        run_chase_replies(rt, CHECKS_AT)
        for attempt in range(2):
            result = run_dispatch(rt, CHECKS_AT + timedelta(hours=attempt))
            assert result.failed > 0 and result.messages_sent == 0
            errors.extend(result.errors.values())
        sent = deliver(tag="ops", title="t", body="b", apprise_config=config, outbox_dir=tmp_path / "outbox")
        assert not sent.ok
        errors.append(sent.error or "")
        shown = [privacy_url(url) for url in secret_urls(smtp_server, http_server)]
        shown += [url for info in config_tags(config).values() for url in info.urls] + config_problems(config)
    finally:
        rt.close()
    assert logging.getLogger("apprise").getEffectiveLevel() >= logging.WARNING  # bianmin put it back
    in_process = capfd.readouterr()

    # a real bianmin process, every logger at DEBUG (through a sitecustomize of the test's own)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE.format(loggers=LOGGERS), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))} | {
        "BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": "en",
        "BIANMIN_APPRISE_CONFIG": str(config), "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "PYTHONPATH": str(site), "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_LOGGING_ROOT_LEVEL": "DEBUG",
        "PREFECT_SERVER_LOGGING_LEVEL": "DEBUG", "PREFECT_INTERNAL_LOGGING_LEVEL": "DEBUG",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "1000"}  # no URL folded over two lines
    runs = {}
    for args in (["config", "check"], ["config", "check", "--json"], ["config", "check", "--send-test", "ops"],
                 ["config", "show", "--json"],
                 ["run", "dispatch", "--as-of", (CHECKS_AT + timedelta(hours=3)).isoformat()]):
        done = subprocess.run([str(BIANMIN), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        runs[" ".join(args)] = done
    assert runs["config check --send-test ops"].returncode == 2  # every send fails, and the check says so
    assert "DEBUG" in runs["config check"].stderr  # the sitecustomize did turn DEBUG on
    [dispatched] = [done for name, done in runs.items() if name.startswith("run dispatch")]
    assert "DEBUG" in dispatched.stderr, dispatched.stderr[-2000:]

    places = {"caplog": "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
              "in-process stdout": in_process.out, "in-process stderr": in_process.err,
              "errors recorded": "\n".join(errors), "URLs shown": "\n".join(shown),
              "database": database_text(db_url),
              "webhook bodies": "\n".join(r.body.decode("utf-8", "replace") + json.dumps(r.headers)
                                          for r in http_server.requests),
              "mail received": "\n".join(m.as_string() for m in smtp_server.messages)}
    for name, done in runs.items():
        places[f"bianmin {name} stdout"] = done.stdout
        places[f"bianmin {name} stderr"] = done.stderr
    if db_url.startswith("sqlite"):
        places["ledger file"] = Path(make_url(db_url).database).read_bytes().decode("utf-8", "replace")
    places |= files_text(tmp_path / "var", leave_out=config)  # Prefect's database and logs, outbox, reports

    found = occurrences(places)
    assert len(caplog.records) > 100 and http_server.requests  # DEBUG was on, and the sends really went out
    assert "prefect.db" in " ".join(places)
    figure("secret canaries", canaries=len(canaries), occurrences=sum(found.values()), places_checked=len(places),
           log_records=len(caplog.records))
    assert found == {}
