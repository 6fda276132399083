"""One precedence rule for every run setting: ``config.attributes``, then ``-x``, then (the URL
only) ``$VIDPIPE_DATABASE_URL`` and ``sqlalchemy.url``, then the default."""

import pytest
from alembic.config import Config

from vidpipe.db import MigrationSettingError
from vidpipe.db.engine import DEFAULT_URL, URL_ENV_VAR
from vidpipe.db.runner.settings import RunSettings, run_options

#: A value per setting for code (``config.attributes``) and one for the command line (``-x``);
#: the latter always differs from the default, so each source is seen.
GIVEN = {
    "lock_timeout": (12.5, "40"),
    "ddl_lock_timeout": ("10s", "20s"),
    "statement_timeout": ("1h", "2h"),
    "ddl_retries": (2, "7"),
    "ddl_retry_delay": (0.5, "3"),
    "allow_data_loss": (False, "true"),
    "configure_logger": (True, "false"),
    "url": ("sqlite:///from-code.db", "sqlite:///from-x.db"),
}


def settings(attributes: dict[str, object], x: dict[str, str], ini: str | None = None) -> RunSettings:
    config = Config()
    if ini is not None:
        config.set_main_option("sqlalchemy.url", ini)
    config.attributes.update(attributes)
    return RunSettings.from_config(config, x)


def test_every_field_is_covered_here() -> None:
    assert set(GIVEN) == set(RunSettings.__dataclass_fields__) - {"url_source"}
    assert {option.name for option in run_options()} < set(GIVEN)


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_code_wins_over_the_command_line_which_wins_over_the_default(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV_VAR, "sqlite:///from-environment.db")
    from_code, from_x = GIVEN[name]
    default = getattr(settings({}, {}), name)

    both = getattr(settings({name: from_code}, {name: from_x}), name)
    x_only = getattr(settings({}, {name: from_x}), name)

    assert both == from_code
    assert str(x_only).lower() == from_x or x_only == float(from_x)
    assert x_only != default or name == "url"


def test_the_url_falls_back_to_the_environment_then_alembic_ini_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(URL_ENV_VAR, "sqlite:///from-environment.db")
    assert settings({}, {}, ini="sqlite:///from-ini.db").url == "sqlite:///from-environment.db"
    assert settings({}, {}).url_source == f"${URL_ENV_VAR}"
    monkeypatch.delenv(URL_ENV_VAR)
    assert settings({}, {}, ini="sqlite:///from-ini.db").url == "sqlite:///from-ini.db"
    assert settings({}, {}).url == DEFAULT_URL


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lock_timeout", "inf"),
        ("lock_timeout", "nan"),
        ("lock_timeout", "0"),
        ("lock_timeout", "soon"),
        ("ddl_lock_timeout", "5 s; DROP TABLE projects"),
        ("statement_timeout", "forever"),
        ("ddl_retries", "-1"),
        ("ddl_retry_delay", "61"),
        ("allow_data_loss", "sure"),
        ("configure_logger", "maybe"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_the_setting(name: str, value: str) -> None:
    for attributes, x in (({name: value}, {}), ({}, {name: value})):
        with pytest.raises(MigrationSettingError, match=name):
            settings(attributes, x)


def test_mariadbs_lock_wait_is_ddl_lock_timeout_in_whole_seconds_rounded_up() -> None:
    """One duration setting serves both servers: PostgreSQL takes it as it is, MariaDB's
    lock_wait_timeout knows only whole seconds (0: keep the server's)."""
    waits = {
        duration: settings({"ddl_lock_timeout": duration}, {}).mysql_lock_wait
        for duration in ("5s", "100ms", "1500", "2min", "0")
    }
    assert waits == {"5s": 5, "100ms": 1, "1500": 2, "2min": 120, "0": None}
