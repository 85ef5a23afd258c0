from flows.settings import Settings
from notifications.masking import mask_url_password


def test_defaults_run_with_nothing_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.effective_database_url == "sqlite:///var/bianmin.db"
    assert settings.timezone == "Asia/Shanghai" and settings.locale == "zh_CN"
    assert settings.cash_cutoff.strftime("%H:%M") == "17:30"
    assert settings.callback_workdays == 2 and settings.reply_minutes == 10


def test_environment_overrides_the_toml_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bianmin.toml").write_text('locale = "en"\nreply_minutes = 15\n', encoding="utf-8")
    monkeypatch.setenv("BIANMIN_REPLY_MINUTES", "12")
    settings = Settings()
    assert settings.locale == "en"
    assert settings.reply_minutes == 12


def test_database_password_is_masked_in_shown_settings():
    settings = Settings(_env_file=None, database_url="postgresql://bm:s3cr3t-pw@db.example:5432/bm")
    shown = settings.masked()
    assert "s3cr3t-pw" not in str(shown)
    assert shown["database_url"] == "postgresql://bm:****@db.example:5432/bm"
    assert mask_url_password("sqlite:///var/bianmin.db") == "sqlite:///var/bianmin.db"


def test_a_route_set_in_the_environment_keeps_the_other_default_routes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIANMIN_ALERT_ROUTES", '{"reply-overdue": "cs-supervisor,cs-manager"}')
    routes = Settings().alert_routes
    assert routes["reply-overdue"] == "cs-supervisor,cs-manager"
    assert routes["monthly-report"] == "administration" and routes["callback-overdue:2"] == "cs-manager"
