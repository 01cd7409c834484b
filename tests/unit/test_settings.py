from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError, load_settings, settings_env, settings_table

README = Path(__file__).parents[2] / "README.md"


def test_defaults_without_environment() -> None:
    assert load_settings({}) == Settings()


def test_values_are_converted_at_the_edge() -> None:
    settings = load_settings({"LOUPE_HTTP_PORT": "9000", "LOUPE_S3_SECURE": "yes",
                              "LOUPE_JOB_BACKOFF_S": "0.5, 2,10", "LOUPE_REQUEST_TIMEOUT_S": "2.5",
                              "PATH": "/bin", "LOUPE_STACK_DATA_DIR": "/tmp/x"})
    assert (settings.http_port, settings.s3_secure, settings.job_backoff_s, settings.request_timeout_s) == (
        9000, True, (0.5, 2.0, 10.0), 2.5)


@pytest.mark.parametrize(("env", "fragment"), [
    ({"LOUPE_HTTP_PROT": "1"}, "unknown setting LOUPE_HTTP_PROT"),
    ({"LOUPE_HTTP_PORT": "eighty"}, "LOUPE_HTTP_PORT='eighty': expected int"),
    ({"LOUPE_S3_SECURE": "maybe"}, "expected true or false"),
    ({"LOUPE_JOB_MAX_DELIVERIES": "0"}, "at least 1"),
])
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


def test_settings_round_trip_through_the_environment() -> None:
    settings = Settings(http_port=1234, job_backoff_s=(1.0, 2.0), s3_secure=True)
    assert load_settings(settings_env(settings)) == settings


def test_readme_documents_every_setting() -> None:
    assert settings_table() in README.read_text(), "run `loupe settings` and paste the table into README.md"
