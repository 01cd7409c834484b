"""`loupe demo`'s options, and what it prints without a gateway; the tour itself is in
tests/integration/test_demo.py."""

from __future__ import annotations

import argparse
import socket

import pytest

from loupe import demo
from loupe.cli import main


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[argparse.Namespace]:
    """The arguments `loupe demo` would run with, instead of running it."""
    seen: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(demo, "run_command", record)
    return seen


def test_the_defaults_come_from_the_environment(
    parsed: list[argparse.Namespace], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("LOUPE_API_KEY", "lp_key")
    assert main(["demo"]) == 0
    args = parsed[0]
    assert (args.images, args.new, args.epochs, args.quiet) == (400, 200, 15, False)
    assert (args.url, args.token) == ("http://127.0.0.1:9999", "lp_key")


def test_options_override_the_defaults(parsed: list[argparse.Namespace], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOUPE_URL", raising=False)
    argv = ["demo", "--images", "50", "--new", "7", "--epochs", "3", "--quiet", "--token", "t"]
    assert main(argv) == 0
    args = parsed[0]
    assert (args.images, args.new, args.epochs, args.quiet, args.token) == (50, 7, 3, True, "t")
    assert args.url == "http://127.0.0.1:7400"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--images", "9", "--images: must be at least 10"),
        ("--new", "0", "--new: must be at least 1"),
        ("--epochs", "0", "--epochs: must be 1 to 1000"),
        ("--epochs", "1001", "--epochs: must be 1 to 1000"),
        ("--epochs", "ten", "--epochs: invalid integer value: 'ten'"),
    ],
)
def test_out_of_range_options_are_refused_before_anything_runs(
    parsed: list[argparse.Namespace], capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", option, value, "--token", "t"])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert parsed == []


def test_without_a_key_it_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOUPE_API_KEY", raising=False)
    assert main(["demo"]) == 2
    assert "--token or LOUPE_API_KEY" in capsys.readouterr().err


def test_without_a_gateway_it_asks_whether_loupe_is_up(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert main(["demo", "--url", url, "--token", "t", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"loupe demo failed: cannot reach {url}" in err and "is `loupe up` running?" in err
