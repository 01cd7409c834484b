"""REST operations for organisations, users, API keys and project members."""

from __future__ import annotations

from proto import catalog, subjects
from services.gateway.operations import ByHand, Operation, route

USER = "/v1/users/{user_id}"
MEMBER = "/v1/projects/{project_id}/members/{user_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", "/v1/orgs", "createOrg", subjects.CREATE_ORG, tag="access", admin=True, status=201, body=True),
    route("GET", "/v1/me", "getMe", subjects.GET_ME, tag="access"),
    # The caller's own keys: a user_id of None (or "") means the caller.
    route("POST", "/v1/me/api-keys", "createMyApiKey", subjects.CREATE_API_KEY, tag="access", status=201,
          summary="Create another API key for yourself; its secret is shown only in this reply",
          to_request=ByHand(lambda params, query, body: catalog.CreateApiKeyRequest(user_id=None, key=body), body=catalog.CreateApiKey)),
    route("GET", "/v1/me/api-keys", "listMyApiKeys", subjects.LIST_API_KEYS, tag="access", summary="List your API keys",
          to_request=ByHand(lambda params, query, body: catalog.UserRef(id=""))),
    route("DELETE", "/v1/me/api-keys/{key_id}", "deleteMyApiKey", subjects.REVOKE_API_KEY, tag="access",
          summary="Revoke one of your API keys",
          to_request=ByHand(lambda params, query, body: catalog.ApiKeyRef(user_id=None, id=params["key_id"]))),
    route("POST", "/v1/users", "createUser", subjects.CREATE_USER, tag="access", admin=True, status=201, body=True),
    route("GET", "/v1/users", "listUsers", subjects.LIST_USERS, tag="access"),
    route("GET", USER, "getUser", subjects.GET_USER, tag="access"),
    route("PATCH", USER, "updateUser", subjects.UPDATE_USER, tag="access", admin=True, body="changes"),
    route("POST", USER + "/api-keys", "createApiKey", subjects.CREATE_API_KEY, tag="access", admin=True, status=201,
          body="key"),
    route("GET", USER + "/api-keys", "listApiKeys", subjects.LIST_API_KEYS, tag="access", admin=True),
    route("DELETE", USER + "/api-keys/{key_id}", "deleteApiKey", subjects.REVOKE_API_KEY, tag="access", admin=True),
    route("GET", "/v1/projects/{project_id}/members", "listMembers", subjects.LIST_MEMBERS, tag="access",
          role="viewer"),
    route("PUT", MEMBER, "updateMember", subjects.SET_MEMBER, tag="access", role="admin", body="member"),
    route("DELETE", MEMBER, "removeMember", subjects.REMOVE_MEMBER, tag="access", role="admin"),
)
# fmt: on
