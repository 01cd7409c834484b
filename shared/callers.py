"""Who a change is recorded under, and who a service's own jobs act as."""

from __future__ import annotations

from typing import overload

from proto.common import Caller


@overload
def actor(caller: Caller) -> str: ...
@overload
def actor(caller: Caller | None) -> str | None: ...
def actor(caller: Caller | None) -> str | None:
    """The key's user, or the key itself for organisation keys."""
    if caller is None:
        return None
    return caller.user_id or f"key:{caller.key_id}"


def service_caller(service: str, org_id: str) -> Caller:
    """The caller a service's own jobs act as, inside the organisation that started them."""
    return Caller(org_id=org_id, key_id=service, is_admin=True)
