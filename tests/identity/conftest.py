"""Organizations and people for the identity tests, made through the services themselves."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI

from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity import service, setup
from forgeyard.kernel.db import Database
from forgeyard.models.identity import Role

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    user_id: str
    organization_id: str
    email: str
    role: str
    access_token: str
    password: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", **self.extra_headers}


def runtime_of(app: FastAPI) -> AuthRuntime:
    runtime: AuthRuntime = app.state.auth
    return runtime


async def add_member(
    app: FastAPI,
    database: Database,
    *,
    organization_id: str,
    email: str,
    role: Role,
    password: str | None = None,
) -> Account:
    async with database.transaction() as session:
        member = await service.create_account(
            session=session,
            email=email,
            name=email.split("@")[0],
            password=password,
            organization_id=organization_id,
            role=role,
        )
    token, _ = runtime_of(app).access_tokens.issue(
        subject=member.user.id, organization_id=organization_id
    )
    return Account(member.user.id, organization_id, member.user.email, role.value, token, password)


async def complete_setup(app: FastAPI, database: Database, *, password: str | None) -> Account:
    """The instance after first-run setup: one organization and its owner."""
    async with database.transaction() as session:
        member = await setup.create_owner(
            session=session,
            email="owner@acme.example",
            password=password,
            name="Olive Owner",
            organization_name="Acme",
        )
        await setup.complete(session=session)
    org_id = member.membership.organization_id
    token, _ = runtime_of(app).access_tokens.issue(subject=member.user.id, organization_id=org_id)
    return Account(member.user.id, org_id, member.user.email, "owner", token, password)


@dataclass
class Tenants:
    """Acme with one person per role, and Globex, another organization, with its owner."""

    owner: Account
    admin: Account
    member: Account
    viewer: Account
    other_owner: Account

    def by_role(self, role: str) -> Account:
        account: Account = getattr(self, role)
        return account


@pytest.fixture
async def tenants(app: FastAPI, database: Database) -> Tenants:
    owner = await complete_setup(app, database, password=PASSWORD)
    acme = owner.organization_id
    people = {
        role: await add_member(
            app, database, organization_id=acme, email=f"{role.value}@acme.example", role=role
        )
        for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER)
    }
    async with database.transaction() as session:
        globex = await service.create_organization(session=session, name="Globex")
    other_owner = await add_member(
        app, database, organization_id=globex.id, email="boss@globex.example", role=Role.OWNER
    )
    return Tenants(
        owner=owner,
        admin=people[Role.ADMIN],
        member=people[Role.MEMBER],
        viewer=people[Role.VIEWER],
        other_owner=other_owner,
    )
