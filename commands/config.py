"""`bianmin config show` (and `config check`, which loads the apprise config)."""
from __future__ import annotations

import stat
from pathlib import Path

import typer
from rich.table import Table

from commands.common import command_group, console, emit, err_console, fail, runtime, t

config_app = command_group("Show and check the configuration.")


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Print the effective settings, secrets masked."""
    from notifications.masking import mask_url_password

    values = runtime().settings.masked()
    # a password may also ride in the query (postgresql://u@h/db?password=...), which settings' mask misses
    values["database_url"] = mask_url_password(str(values["database_url"]))

    def render() -> None:
        table = Table(t("cli.config.effective_settings"))
        table.add_column(t("cli.config.value"))
        for key, value in values.items():
            table.add_row(key, str(value))
        console.print(table)

    emit(as_json, values, render)


@config_app.command("check")
def check(send_test: str | None = typer.Option(None, "--send-test", metavar="TAG",
                                               help="Also send a test message to this tag."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Load the apprise config, list its tags with masked URLs, and report routed tags that have no URL (exit 2)."""
    from notifications.delivery import AppriseConfigError, config_problems, config_tags, deliver
    from notifications.outbox import routed_tags

    settings = runtime().settings
    needed = routed_tags(settings.alert_routes)
    path = settings.apprise_config
    data: dict = {"apprise_config": str(path) if path else None, "tags": {}, "missing": [], "errors": [],
                  "outbox_dir": str(settings.effective_outbox_dir), "test": None}
    if path is None:
        data["note"] = t("cli.config.no_apprise", folder=settings.effective_outbox_dir)
    else:
        data["warnings"] = _exposed(path)
        try:
            tags = config_tags(path)
        except AppriseConfigError as exc:
            data["errors"].append(str(exc))
            tags = {}
        data["tags"] = {tag: list(info.urls) for tag, info in tags.items()}
        if tags:  # apprise skips an entry it cannot read: that is a configuration error too
            data["errors"].extend(t("cli.config.skipped_entry", line=line)
                                  for line in config_problems(path))
        if not data["errors"]:
            data["missing"] = [tag for tag in needed if tag.lower() not in tags]
    if send_test:
        title = t("cli.config.test_title")
        body = t("cli.config.test_body", tag=send_test)
        result = deliver(tag=send_test, title=title, body=body, apprise_config=path,
                         outbox_dir=settings.effective_outbox_dir)
        data["test"] = {"tag": send_test, "ok": result.ok, "error": result.error,
                        "file": str(result.path) if result.path else None}

    def render() -> None:
        if data.get("note"):
            console.print(data["note"], markup=False, highlight=False)
        if data["tags"]:
            table = Table(title=t("cli.config.apprise_config", path=path))
            table.add_column(t("cli.config.tag"))
            table.add_column(t("cli.config.urls"), overflow="fold")
            table.add_column(t("cli.config.routed"))
            for tag, urls in data["tags"].items():
                table.add_row(tag, "\n".join(urls), t("cli.yes") if tag in {n.lower() for n in needed} else "")
            console.print(table)
        test = data["test"]
        if test:
            if test["ok"]:
                console.print(t("cli.config.test_sent", tag=test['tag'])
                              + (f" ({test['file']})" if test["file"] else ""), markup=False, highlight=False)
            else:
                err_console.print(t("cli.config.test_failed", tag=test['tag'], error=test['error']),
                                  style="red", markup=False, highlight=False)

    emit(as_json, data, render)
    for line in data.get("warnings", ()):
        err_console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)
    problems = list(data["errors"])
    problems += [t("cli.config.tag_without_url", tag=tag)
                 for tag in data["missing"]]
    if data["test"] and not data["test"]["ok"]:
        problems.append(t("cli.config.test_not_delivered"))
    if problems:
        for line in problems[:-1]:
            err_console.print(line, style="red", markup=False, highlight=False)
        fail(problems[-1])


def _exposed(path: Path) -> list[str]:
    """One warning when the apprise config (passwords, tokens) is open to group or others: it should be 0600."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return []  # a missing file is reported by loading it
    if not mode & 0o077:
        return []
    return [t("cli.config.open_permissions", path=path, mode=stat.filemode(mode))]


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.add_typer(config_app, name="config")
