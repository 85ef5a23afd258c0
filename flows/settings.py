"""Effective configuration: `BIANMIN_*` environment variables over an optional `bianmin.toml`."""
from __future__ import annotations

import os
import re
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from models import findings as catalogue
from models.ledger.db import shown_url

# alert kind[:level] -> apprise tag(s), comma separated; "{dept}" is the holder's department, "{party}" the
# sign-off party's confirmer (cs-manager, finance-manager, engineering- or cleaning-supervisor)
DEFAULT_ROUTES: dict[str, str] = catalogue.default_routes()


class Settings(BaseSettings):
    """Every knob of bianmin, with defaults that run with nothing set."""

    model_config = SettingsConfigDict(
        env_prefix="BIANMIN_",
        toml_file=os.environ.get("BIANMIN_CONFIG_FILE", "bianmin.toml"),
        extra="ignore",
    )

    data_dir: Path = Path("var")
    database_url: str | None = None
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    work_start: time = time(8, 30)
    work_end: time = time(17, 30)
    cash_cutoff: time = time(17, 30)
    cash_check_grace_minutes: int = 30
    cash_morning_check: time = time(9, 0)
    callback_workdays: int = 2
    callback_escalate_workdays: int = 1
    rework_due_hours: int = 24
    reply_minutes: int = 10
    receipt_return_workdays: int = 5
    calendar_override: Path | None = None
    apprise_config: Path | None = None
    outbox_dir: Path | None = None
    reports_dir: Path | None = None
    repeat_hours: float = 4.0
    send_resolved: bool = True
    backoff_base_seconds: int = 60
    backoff_max_seconds: int = 3600
    channel_alert_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    alert_routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    tally_resend_on_change: bool = False
    # the departments check the month's draft before administration gets it (docs/report.md "Sign-off")
    signoff: bool = True
    signoff_workdays: int = Field(default=3, ge=1, le=20)
    schedule_replies: str = "*/5 * * * *"
    schedule_callbacks: str = "0 * * * *"
    schedule_dispatch: str = "* * * * *"
    schedule_tally: str = "0 8 * * *"
    prefect_port: int = 4209
    # group scale (docs/deploy.md): the Prefect work pool `bianmin deploy` applies the deployments to; how many
    # offices one child run checks (0: no fan-out, one run checks every office, as `bianmin serve` does); the
    # ops webhook Prefect's automations call for late, crashed and failed runs (kept in a Prefect Webhook block,
    # never printed); how long a run may go without a heartbeat before the server marks it crashed
    work_pool: str = Field(default="bianmin", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    fanout_batch: int = Field(default=0, ge=0, le=10_000)
    ops_webhook_url: SecretStr | None = None
    run_silent_seconds: int = Field(default=600, ge=60, le=24 * 3600)
    # the web console (console/): the base of every link sent, the key that signs cookies and links (unset: one
    # is generated into the data folder), how long an alert link opens, whether `bianmin serve` starts it
    public_url: str = "http://127.0.0.1:8209"
    secret_key: SecretStr | None = None
    link_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    web: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8209, ge=1, le=65535)
    # `bianmin watch` (flows/watch.py): how long an alert may wait undispatched, how long a scheduled run may take
    # before it counts as missed, how long the Prefect server has to answer, where the watch keeps what it told
    watch_pending_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    watch_grace_minutes: int = Field(default=15, ge=1, le=24 * 60)
    watch_prefect_timeout: float = Field(default=3.0, gt=0, le=60)
    watch_state_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("alert_routes")
    @classmethod
    def _routes_over_defaults(cls, value: dict[str, str]) -> dict[str, str]:
        # naming one route must not silently drop every other default route
        return {**DEFAULT_ROUTES, **value}

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("zh_CN", "en"):
            raise ValueError("locale must be zh_CN or en")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("public_url must be an http:// or https:// URL without query, e.g. https://bianmin.example.com")
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'bianmin.db'}"

    @property
    def effective_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def effective_reports_dir(self) -> Path:
        return self.reports_dir or self.data_dir / "reports"

    @property
    def effective_watch_state_file(self) -> Path:
        return self.watch_state_file or self.data_dir / "watch-state.json"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain values, passwords in URLs masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, (Path, time, Decimal)):
                value = str(value)
            elif isinstance(value, SecretStr):
                value = "****"  # set, and never shown
            out[name] = value
        out["database_url"] = shown_url(self.effective_database_url, mask="****")
        return out
