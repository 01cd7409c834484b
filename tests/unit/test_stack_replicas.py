"""How many processes of each service a stack runs, their names, their ports, and `loupe up --replicas`."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import pytest

from loupe.cli import main, replicas
from loupe.servers import free_ports
from loupe.stack import Stack, StackPorts, replica_counts, replica_names, service_of
from proto.subjects import SERVICES, WORKER_SERVICES


def test_one_number_applies_to_every_worker_service_and_the_gateway_runs_once() -> None:
    assert replica_counts(3, SERVICES) == {"gateway": 1, **dict.fromkeys(WORKER_SERVICES, 3)}
    assert replica_counts({"ingest": 2}, ("gateway", "ingest", "catalog")) == {"gateway": 1, "ingest": 2, "catalog": 1}
    assert replica_counts({"gateway": 1}, ("gateway",)) == {"gateway": 1}


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"gateway": 2}, "gateway runs once"),
        ({"ingest": 0}, "at least 1, not 0"),
        ({"ingestt": 2}, "replicas of 'ingestt', which this stack does not run"),
        (-1, "at least 1, not -1"),
    ],
)
def test_replica_counts_that_make_no_stack_are_refused(asked: int | dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replica_counts(asked, SERVICES)


def test_replicas_are_named_after_their_service() -> None:
    assert replica_names("ingest", 3) == ["ingest", "ingest#2", "ingest#3"]
    assert replica_names("ingest", 1) == ["ingest"]
    assert [service_of(name) for name in ("ingest#2", "ingest", "nats")] == ["ingest", "ingest", "nats"]


def test_each_replica_gets_a_port_of_its_own(tmp_path: Path) -> None:
    ports = StackPorts.free()
    stack = Stack(tmp_path, ports, replicas={"ingest": 3, "annotation": 2})
    assert stack.replica_ports["ingest"] == ports.ingest and stack.replica_ports["annotation"] == ports.annotation
    assert set(stack.replica_ports) == {*SERVICES, "ingest#2", "ingest#3", "annotation#2"}
    extra = [stack.replica_ports[name] for name in ("ingest#2", "ingest#3", "annotation#2")]
    assert len(set(extra)) == 3 and not set(extra) & set(msgspec.structs.astuple(ports))
    assert stack.service_env("ingest#3")["LOUPE_HTTP_PORT"] == str(stack.replica_ports["ingest#3"])
    # Every catalog replica may be the first to start, so each knows the admin key to make.
    stack = Stack(tmp_path, ports, replicas={"catalog": 2})
    assert stack.service_env("catalog#2")["LOUPE_BOOTSTRAP_ADMIN_KEY"] == stack.admin_key
    assert stack.service_env("ingest")["LOUPE_BOOTSTRAP_ADMIN_KEY"] == ""
    with pytest.raises(ValueError, match="unknown service or replica 'ingest#2'"):
        stack.service_env("ingest#2")


def test_free_ports_are_distinct_and_avoid_the_taken_ones() -> None:
    taken = set(free_ports(50))
    found = free_ports(50, taken=taken)
    assert len(set(found)) == 50 and not taken & set(found)
    assert free_ports(0) == []


def test_replicas_option_takes_a_number_or_a_count_per_service() -> None:
    assert replicas("2") == 2
    assert replicas("ingest=2,annotation=3") == {"ingest": 2, "annotation": 3}
    with pytest.raises(argparse.ArgumentTypeError, match="ingest=two"):
        replicas("ingest=two")


def test_loupe_up_refuses_replicas_of_the_gateway_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--data-dir", str(tmp_path), "--replicas", "gateway=2"]) == 2
    assert "gateway runs once" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
