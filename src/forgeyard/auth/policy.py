"""The role policy, read from the table in docs/roles.md (shipped inside the wheel)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROLES = ("owner", "admin", "member", "viewer")
SCOPES = ("read", "write", "admin")
# A key's scope stands for the role whose reach it has.
SCOPE_ROLE = {"read": "viewer", "write": "member", "admin": "admin"}
ROLE_RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True, slots=True)
class Rule:
    permission: str
    roles: frozenset[str]
    key_scope: str


def policy_file() -> Path:
    packaged = Path(__file__).resolve().parent / "roles.md"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "docs" / "roles.md"


def parse_policy(markdown: str) -> dict[str, Rule]:
    rows = [line.strip().strip("|").split("|") for line in markdown.splitlines()]
    table = [[cell.strip() for cell in row] for row in rows if len(row) == len(ROLES) + 2]
    header, body = table[0], [row for row in table[1:] if not set(row[0]) <= {"-"}]
    if header != ["permission", *ROLES, "key scope"]:
        raise ValueError(f"unexpected policy table header: {header}")
    rules = {}
    for permission, *grants, scope in body:
        if scope not in SCOPES or any(g not in ("yes", "no") for g in grants):
            raise ValueError(f"malformed policy row for {permission!r}")
        roles = frozenset(role for role, grant in zip(ROLES, grants, strict=True) if grant == "yes")
        rules[permission] = Rule(permission, roles, scope)
    return rules


@cache
def rules() -> dict[str, Rule]:
    return parse_policy(policy_file().read_text())


def role_allows(role: str, permission: str) -> bool:
    return role in rules()[permission].roles


def scope_allows(scope: str, permission: str) -> bool:
    needed = rules()[permission].key_scope
    return SCOPES.index(scope) >= SCOPES.index(needed)


def role_at_least(role: str, other: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[other]
