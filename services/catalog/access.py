"""Who may do what: organisations, users, their API keys, and per-project roles.

A caller's role on a project is the strongest of: organisation admin → admin; their membership;
a public project → viewer. A caller with none of these cannot see the project at all, and is told
it does not exist (404), so private projects never leak their existence.
"""

from __future__ import annotations

import uuid

import asyncpg

from proto import subjects
from proto.catalog import (
    ApiKey,
    ApiKeyList,
    ApiKeyRef,
    ApiKeyRevoked,
    CheckAccess,
    CreateApiKeyRequest,
    CreateOrg,
    CreateUser,
    Me,
    Member,
    MemberChanged,
    MemberList,
    MemberRef,
    Org,
    OrgCreated,
    ProjectAccess,
    ProjectRef,
    Role,
    SetMemberRequest,
    UpdateUserRequest,
    User,
    UserList,
    UserRef,
    UserUpdated,
    role_at_least,
)
from proto.common import Caller, Empty
from proto.samples import LocateSample, SampleRef
from services.catalog.apikeys import DEFAULT_ORG, key_hash, new_key
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, not_found
from shared.ids import parse_uuid
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

USER_COLUMNS = "id, org_id, name, email, is_admin, deactivated_at IS NULL AS active, created_at"
KEY_COLUMNS = "id, org_id, user_id, name, created_at, revoked_at"
# The fields of a user whose change is announced (USER_UPDATED); `email` cannot change.
USER_FIELDS = ("name", "is_admin", "active")


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise LoupeError(
            "forbidden",
            "only an organisation admin may manage users and keys of others; "
            "ask an admin, or use /v1/me for your own keys",
        )


def to_user(row: asyncpg.Record, viewer: Caller) -> User:
    # Names tell colleagues apart; an email is personal, so only admins and its owner see it.
    sees_email = viewer.is_admin or viewer.user_id == str(row["id"])
    return from_row(User, row, email=row["email"] if sees_email else None)


def to_key(row: asyncpg.Record, secret: str | None = None) -> ApiKey:
    return from_row(ApiKey, row, key=secret)


def key_revoked(row: asyncpg.Record) -> ApiKeyRevoked:
    return from_row(ApiKeyRevoked, row, key_id=str(row["id"]))


async def project_role(conn: asyncpg.Connection | asyncpg.Pool, caller: Caller, project_id: uuid.UUID) -> Role | None:
    row = await conn.fetchrow(
        "SELECT p.public, m.role FROM projects p "
        "LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $3 "
        "WHERE p.id = $1 AND p.org_id = $2",
        project_id,
        uuid.UUID(caller.org_id),
        uuid.UUID(caller.user_id) if caller.user_id else None,
    )
    if row is None:
        return None
    if caller.is_admin:
        return "admin"
    if row["role"] is not None:
        return row["role"]
    return "viewer" if row["public"] else None


@ANSWERS(subjects.CHECK_ACCESS)
async def check_access(rt: Runtime, request: CheckAccess, ctx: RequestContext) -> ProjectAccess:
    caller = ctx.require_caller()
    role = await project_role(rt.db, caller, parse_uuid(request.project_id, "project"))
    if role is None:
        raise not_found("project", request.project_id)
    if not role_at_least(role, request.role):
        raise LoupeError(
            "forbidden",
            f"this needs the {request.role} role on project {request.project_id}; "
            f"you are {role}. Ask a project admin for a stronger role",
            role=role,
            needed=request.role,
        )
    return ProjectAccess(project_id=request.project_id, role=role)


@ANSWERS(subjects.LOCATE_SAMPLE)
async def locate_sample(rt: Runtime, request: LocateSample, ctx: RequestContext) -> SampleRef:
    caller = ctx.require_caller()
    project_id = await rt.db.fetchval(
        "SELECT project_id FROM samples WHERE id = $1", parse_uuid(request.sample_id, "sample")
    )
    if project_id is None or await project_role(rt.db, caller, project_id) is None:
        raise not_found("sample", request.sample_id)
    return SampleRef(project_id=str(project_id), sample_id=request.sample_id)


# -- organisations ------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_ORG)
async def create_org(rt: Runtime, request: CreateOrg, ctx: RequestContext) -> OrgCreated:
    """Operators (admins of the organisation Loupe created on first start) make organisations."""
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction():
        operator_org = await conn.fetchval("SELECT id FROM orgs WHERE name = $1", DEFAULT_ORG)
        if not caller.is_admin or str(operator_org) != caller.org_id:
            raise LoupeError("forbidden", f"only admins of the {DEFAULT_ORG!r} organisation create organisations")
        try:
            org = await conn.fetchrow(
                "INSERT INTO orgs (name) VALUES ($1) RETURNING id, name, created_at", request.name.strip()
            )
        except asyncpg.UniqueViolationError:
            raise conflict(
                f"an organisation named {request.name!r} exists; choose another name", path="$.name"
            ) from None
        user = await conn.fetchrow(
            f"INSERT INTO users (org_id, name, email, is_admin) VALUES ($1, $2, $3, true) RETURNING {USER_COLUMNS}",
            org["id"],
            request.admin_name,
            request.admin_email,
        )
        secret = new_key()
        key = await conn.fetchrow(
            f"INSERT INTO api_keys (org_id, user_id, name, key_hash, is_admin) "
            f"VALUES ($1, $2, 'first admin key', $3, true) RETURNING {KEY_COLUMNS}",
            org["id"],
            user["id"],
            key_hash(secret),
        )
    return OrgCreated(
        org=Org(id=str(org["id"]), name=org["name"], created_at=org["created_at"]),
        admin=to_user(user, caller),
        api_key=to_key(key, secret),
    )


@ANSWERS(subjects.GET_ME)
async def get_me(rt: Runtime, request: Empty, ctx: RequestContext) -> Me:
    caller = ctx.require_caller()
    user = None
    if caller.user_id:
        row = await rt.db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", uuid.UUID(caller.user_id))
        user = to_user(row, caller) if row else None
    org = await rt.db.fetchrow("SELECT name, created_at FROM orgs WHERE id = $1", uuid.UUID(caller.org_id))
    return Me(
        org_id=caller.org_id,
        key_id=caller.key_id,
        user=user,
        is_admin=caller.is_admin,
        org_name=org["name"],
        org_created_at=org["created_at"],
    )


# -- users ---------------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_USER)
async def create_user(rt: Runtime, request: CreateUser, ctx: RequestContext) -> User:
    caller = ctx.require_caller()
    require_admin(caller)
    try:
        row = await rt.db.fetchrow(
            f"INSERT INTO users (org_id, name, email, is_admin) VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}",
            uuid.UUID(caller.org_id),
            request.name,
            request.email,
            request.is_admin,
        )
    except asyncpg.UniqueViolationError:
        raise conflict(f"a user with email {request.email!r} exists in this organisation", path="$.email") from None
    return to_user(row, caller)


@ANSWERS(subjects.LIST_USERS)
async def list_users(rt: Runtime, request: Empty, ctx: RequestContext) -> UserList:
    caller = ctx.require_caller()
    rows = await rt.db.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY created_at, id", uuid.UUID(caller.org_id)
    )
    return UserList(items=[to_user(row, caller) for row in rows])


async def fetch_user(
    conn: asyncpg.Connection | asyncpg.Pool, caller: Caller, user_id: str, *, for_update: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND org_id = $2{' FOR UPDATE' if for_update else ''}",
        parse_uuid(user_id, "user"),
        uuid.UUID(caller.org_id),
    )
    if row is None:
        raise not_found("user", user_id)
    return row


@ANSWERS(subjects.GET_USER)
async def get_user(rt: Runtime, request: UserRef, ctx: RequestContext) -> User:
    caller = ctx.require_caller()
    return to_user(await fetch_user(rt.db, caller, request.id), caller)


@ANSWERS(subjects.UPDATE_USER)
async def update_user(rt: Runtime, request: UpdateUserRequest, ctx: RequestContext) -> User:
    caller = ctx.require_caller()
    require_admin(caller)
    changes = request.changes
    async with rt.db.acquire() as conn, conn.transaction():
        before = await fetch_user(conn, caller, request.id, for_update=True)
        row = await conn.fetchrow(
            "UPDATE users SET name = coalesce($2, name), is_admin = coalesce($3, is_admin), "
            "deactivated_at = CASE WHEN $4::boolean IS NULL THEN deactivated_at "
            "                      WHEN $4 THEN NULL ELSE coalesce(deactivated_at, now()) END "
            f"WHERE id = $1 RETURNING {USER_COLUMNS}",
            uuid.UUID(request.id),
            changes.name,
            changes.is_admin,
            changes.active,
        )
        # Keys carry the admin flag so verification is one lookup; keep them in step with their user.
        await conn.execute("UPDATE api_keys SET is_admin = $2 WHERE user_id = $1", row["id"], row["is_admin"])
        if not row["active"]:
            revoked = await conn.fetch(
                "UPDATE api_keys SET revoked_at = now() "
                "WHERE user_id = $1 AND revoked_at IS NULL RETURNING id, org_id, user_id",
                row["id"],
            )
            await outbox.emit_many(conn, subjects.APIKEY_REVOKED, [key_revoked(key) for key in revoked], None)
        changed = [field for field in USER_FIELDS if row[field] != before[field]]
        if changed:
            await outbox.emit(
                conn,
                subjects.USER_UPDATED,
                UserUpdated(
                    user_id=str(row["id"]),
                    org_id=str(row["org_id"]),
                    changed=changed,
                    name=row["name"],
                    is_admin=row["is_admin"],
                    active=row["active"],
                ),
                None,
            )
    return to_user(row, caller)


# -- API keys ------------------------------------------------------------------------------------------


def key_owner(caller: Caller, user_id: str | None) -> str:
    """Whose keys a request is about: one's own (no user id, or one's own id), or, for admins, anyone's."""
    if user_id is None or user_id == caller.user_id:
        if not caller.user_id:
            raise LoupeError(
                "invalid",
                "this key belongs to the organisation, not a user; "
                "create a user and manage keys under /v1/users/{user_id}/api-keys",
            )
        return caller.user_id
    require_admin(caller)
    return user_id


@ANSWERS(subjects.CREATE_API_KEY)
async def create_api_key(rt: Runtime, request: CreateApiKeyRequest, ctx: RequestContext) -> ApiKey:
    caller = ctx.require_caller()
    owner = key_owner(caller, request.user_id)
    secret = new_key()
    async with rt.db.acquire() as conn, conn.transaction():
        user = await fetch_user(conn, caller, owner)
        if not user["active"]:
            raise conflict(f"user {owner} is deactivated; reactivate them before creating keys")
        row = await conn.fetchrow(
            f"INSERT INTO api_keys (org_id, user_id, name, key_hash, is_admin) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}",
            user["org_id"],
            user["id"],
            request.key.name,
            key_hash(secret),
            user["is_admin"],
        )
    return to_key(row, secret)


@ANSWERS(subjects.LIST_API_KEYS)
async def list_api_keys(rt: Runtime, request: UserRef, ctx: RequestContext) -> ApiKeyList:
    caller = ctx.require_caller()
    owner = key_owner(caller, request.id or None)
    user = await fetch_user(rt.db, caller, owner)
    rows = await rt.db.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at", user["id"])
    return ApiKeyList(items=[to_key(row) for row in rows])


@ANSWERS(subjects.REVOKE_API_KEY)
async def revoke_api_key(rt: Runtime, request: ApiKeyRef, ctx: RequestContext) -> ApiKey:
    """Revoking a revoked key answers it unchanged, and announces nothing."""
    caller = ctx.require_caller()
    owner = key_owner(caller, request.user_id)
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 AND user_id = $2 AND org_id = $3 FOR UPDATE",
            parse_uuid(request.id, "API key"),
            parse_uuid(owner, "user"),
            uuid.UUID(caller.org_id),
        )
        if row is None:
            raise not_found("API key", request.id)
        if row["revoked_at"] is None:
            row = await conn.fetchrow(
                f"UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING {KEY_COLUMNS}", row["id"]
            )
            await outbox.emit(conn, subjects.APIKEY_REVOKED, key_revoked(row), None)
    return to_key(row)


# -- project members -----------------------------------------------------------------------------------


def to_member(row: asyncpg.Record) -> Member:
    return Member(
        project_id=str(row["project_id"]), user_id=str(row["user_id"]), role=row["role"], created_at=row["created_at"]
    )


@ANSWERS(subjects.LIST_MEMBERS)
async def list_members(rt: Runtime, request: ProjectRef, ctx: RequestContext) -> MemberList:
    rows = await rt.db.fetch(
        "SELECT * FROM project_members WHERE project_id = $1 ORDER BY created_at", parse_uuid(request.id, "project")
    )
    return MemberList(items=[to_member(row) for row in rows])


@ANSWERS(subjects.SET_MEMBER)
async def set_member(rt: Runtime, request: SetMemberRequest, ctx: RequestContext) -> Member:
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction():
        await fetch_user(conn, caller, request.user_id)
        row = await conn.fetchrow(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) "
            "ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role RETURNING *",
            parse_uuid(request.project_id, "project"),
            uuid.UUID(request.user_id),
            request.member.role,
        )
        member = to_member(row)
        await outbox.emit(
            conn,
            subjects.MEMBER_CHANGED,
            MemberChanged(project_id=member.project_id, user_id=member.user_id, role=member.role),
            member.project_id,
        )
    return member


@ANSWERS(subjects.REMOVE_MEMBER)
async def remove_member(rt: Runtime, request: MemberRef, ctx: RequestContext) -> Empty:
    async with rt.db.acquire() as conn, conn.transaction():
        removed = await conn.fetchval(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2 RETURNING true",
            parse_uuid(request.project_id, "project"),
            parse_uuid(request.user_id, "user"),
        )
        if not removed:
            raise not_found("member", request.user_id)
        await outbox.emit(
            conn,
            subjects.MEMBER_CHANGED,
            MemberChanged(project_id=request.project_id, user_id=request.user_id, role=None),
            request.project_id,
        )
    return Empty()
