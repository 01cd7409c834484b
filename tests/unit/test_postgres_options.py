"""The local stack's Postgres settings reach its command line as `-c name=value` pairs."""

from loupe.servers import POSTGRES_SETTINGS, postgres_options


def test_each_setting_is_one_dash_c_pair() -> None:
    options = postgres_options()
    assert options[::2] == ["-c"] * len(POSTGRES_SETTINGS)
    assert dict(pair.split("=", 1) for pair in options[1::2]) == POSTGRES_SETTINGS


def test_the_memory_settings_are_among_them() -> None:
    assert {"shared_buffers=512MB", "wal_buffers=4MB", "io_method=sync"} <= set(postgres_options())
