"""What a service declares (its commands and consumers), and its runtime's state by typed key."""

from __future__ import annotations

import pytest

from proto import subjects
from proto.catalog import ProjectDeleted
from shared.consumers import Delivery
from shared.service import Runtime, Service, State, StateKey

CLIENT = StateKey("example client", list)


def test_a_state_key_gives_back_what_was_stored_under_it() -> None:
    state = State()
    client: list[str] = []
    state[CLIENT] = client
    assert state[CLIENT] is client
    # Two keys of the same name are two keys: the object is the key, not its name.
    with pytest.raises(KeyError):
        state[StateKey("example client", list)]


def test_reading_state_before_it_is_made_names_the_key() -> None:
    with pytest.raises(KeyError, match="example client is not in the runtime's state yet"):
        State()[CLIENT]


def test_a_service_creates_its_own_consumers_and_one_for_all_its_events() -> None:
    service = Service("example", uses_db=False)

    @service.consumer("work", subjects.JOBS_STREAM, "loupe.job.example.work", dict)
    async def work(rt: Runtime, job: dict, delivery: Delivery) -> None: ...

    assert [(c.durable, c.stream) for c in service.consumers()] == [("example-work", subjects.JOBS_STREAM)]

    @service.on_event(subjects.PROJECT_DELETED)
    async def deleted(rt: Runtime, project: str | None, event: ProjectDeleted, delivery: Delivery) -> None: ...

    assert [(c.durable, c.stream) for c in service.consumers()] == [
        ("example-work", subjects.JOBS_STREAM), ("example-events", subjects.EVENTS_STREAM)]
    assert service.consumers()[1].filter_subjects == (subjects.PROJECT_DELETED.subject,)


def test_a_service_answers_each_command_with_its_handler() -> None:
    service = Service("example", uses_db=False)

    async def info(rt: Runtime, request: object, ctx: object) -> None: ...

    service.answer([(subjects.GET_RUN, info)])
    assert service.commands == [(subjects.GET_RUN, info)]
