"""Log in and out, supervisor approval, first-manager setup, and account management."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from appliance.auth import lockout
from appliance.auth.guard import Auth, refusal, same_origin
from appliance.auth.passwords import check_password, check_pin, hash_secret, verify_secret
from appliance.auth.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES
from appliance.auth.sessions import COOKIE, Principal
from appliance.auth.tokens import check_setup_code, forget_setup_code
from appliance.auth.users import get_user, list_users, manager_exists, public_view, upsert_user
from appliance.errors import ApplianceError, Conflict, NotFound, ValidationError
from appliance.register import Register
from appliance.service import RegisterService

Doc = dict[str, Any]
SETUP_ACCOUNT = "#setup"  # lock-out counter of setup-code guesses
router = APIRouter()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Body):
    username: StrictStr = Field(min_length=1, max_length=32)
    password: StrictStr | None = Field(default=None, max_length=256)
    pin: StrictStr | None = Field(default=None, max_length=8)


class ApproveIn(_Body):
    username: StrictStr = Field(min_length=1, max_length=32)
    secret: StrictStr = Field(min_length=1, max_length=256, description="PIN or password")
    permission: Literal[PERMISSIONS]  # type: ignore[valid-type]


class SetupIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=32)
    username: StrictStr
    name: StrictStr
    password: StrictStr
    pin: StrictStr | None = None


class UserIn(_Body):
    name: StrictStr
    role: Literal["cashier", "supervisor", "manager"]
    password: StrictStr | None = None
    pin: StrictStr | None = None
    clear_password: StrictBool = False
    clear_pin: StrictBool = False
    disabled: StrictBool = False


class LockedOut(ApplianceError):
    code = "locked_out"
    http_status = 429


class LoginFailed(ApplianceError):
    code = "login_failed"
    http_status = 401


def _auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


def _svc(request: Request) -> RegisterService:
    svc: RegisterService = request.app.state.service
    return svc


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def _verify(request: Request, username: str, secrets_to_try: list[tuple[str, str]]) -> Doc:
    """Check a user's secret with lock-out; returns the user or raises.

    Logins are checked one at a time (the lock), so the failure count is exact and
    guessing is slowed to one argon2 verification at a time.
    """
    auth, svc = _auth(request), _svc(request)
    web = auth.config.web
    async with auth.login_lock:
        now = time.time()
        until = await svc.call(lockout.locked_until, username, now)
        if until is not None:
            raise LockedOut(
                f"too many failed attempts: {username} is locked for "
                f"{max(1, round((until - now) / 60))} more minute(s)",
                field="username",
                locked_until=until,
            )
        user: Doc | None = await svc.call(get_user, username)
        ok = False
        for kind, secret in secrets_to_try:
            hashed = user.get(f"{kind}_hash") if user else None
            if await asyncio.to_thread(verify_secret, hashed, secret):
                ok = True
                break
        if not ok or user is None or user["disabled"]:
            until = await svc.call(
                lockout.record_failure,
                username,
                time.time(),
                web.lockout_failures,
                web.lockout_minutes * 60,
            )
            if until is not None:
                raise LockedOut(
                    f"too many failed attempts: {username} is now locked for "
                    f"{web.lockout_minutes:g} minute(s)",
                    field="username",
                    locked_until=until,
                )
            raise LoginFailed("wrong name, password or PIN", field="username")
        await svc.call(lockout.clear_failures, username)
        return user


def _start_session(request: Request, user: Doc) -> JSONResponse:
    auth = _auth(request)
    token, session = auth.sessions.create(user["username"], user["name"], user["role"], time.time())
    response = JSONResponse(
        {"user": public_view(user), "csrf": session.csrf, "permissions": _perms(user["role"])}
    )
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _perms(role: str) -> list[str]:
    return sorted(ROLE_PERMISSIONS.get(role, ()))


def _browser_only(request: Request) -> JSONResponse | None:
    """Log-in forms take JSON from this origin only (no login CSRF from other sites)."""
    if not same_origin(request) or "application/json" not in request.headers.get(
        "content-type", ""
    ):
        return refusal(403, "csrf", "log in from the register's own page")
    return None


@router.post("/auth/login")
async def login(request: Request, body: LoginIn) -> JSONResponse:
    """Managers log in with a password, cashiers with a PIN."""
    bad = _browser_only(request)
    if bad is not None:
        return bad
    if (body.password is None) == (body.pin is None):
        raise ValidationError("give either a password or a PIN", field="password")
    if body.password is not None:
        user = await _verify(request, body.username, [("password", body.password)])
    else:
        user = await _verify(request, body.username, [("pin", body.pin or "")])
    return _start_session(request, user)


@router.post("/auth/logout")
async def logout(request: Request) -> JSONResponse:
    token = request.cookies.get(COOKIE)
    if token:
        _auth(request).sessions.drop(token)
    response = JSONResponse({"logged_out": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/auth/me")
async def me(request: Request) -> Doc:
    principal = principal_of(request)
    return {
        "username": principal.username,
        "name": principal.name,
        "role": principal.role,
        "permissions": sorted(principal.permissions),
        "csrf": principal.session.csrf if principal.session else None,
    }


@router.post("/auth/approve")
async def approve(request: Request, body: ApproveIn) -> Doc:
    """A supervisor's PIN or password lets this session do one thing it may not alone."""
    principal = principal_of(request)
    if principal.session is None:
        raise Conflict("approvals are for browser sessions", field="session")
    user = await _verify(request, body.username, [("pin", body.secret), ("password", body.secret)])
    if body.permission not in ROLE_PERMISSIONS.get(user["role"], ()):
        raise LoginFailed(
            f"{user['name']} ({user['role']}) may not approve '{body.permission}'",
            field="username",
        )
    seconds = _auth(request).config.web.approval_seconds
    principal.session.grants[body.permission] = time.time() + seconds
    principal.session.approvers[body.permission] = user["username"]
    return {"approved": body.permission, "by": user["username"], "seconds": seconds}


async def setup_pending(request: Request) -> bool:
    """True while the register has no manager. A manager made elsewhere (another
    register on the LAN, the back office, ``appliance user add``) ends it too."""
    auth = _auth(request)
    if auth.setup_code is None:
        return False
    if await _svc(request).call(manager_exists):
        auth.setup_code = None
        forget_setup_code(auth.config.data_dir)
        return False
    return True


@router.post("/auth/setup")
async def setup(request: Request, body: SetupIn) -> JSONResponse:
    """Create the first manager with the setup code printed at first start."""
    bad = _browser_only(request)
    if bad is not None:
        return bad
    auth, svc = _auth(request), _svc(request)
    if not await setup_pending(request):
        raise Conflict("this register already has a manager: log in instead", field="code")
    web = auth.config.web
    async with auth.login_lock:
        now = time.time()
        if await svc.call(lockout.locked_until, SETUP_ACCOUNT, now) is not None:
            raise LockedOut("too many wrong setup codes: wait and try again", field="code")
        if not check_setup_code(auth.config.data_dir, body.code):
            await svc.call(
                lockout.record_failure,
                SETUP_ACCOUNT,
                now,
                web.lockout_failures,
                web.lockout_minutes * 60,
            )
            raise LoginFailed(
                "wrong setup code (it is printed at start and kept in the data folder)",
                field="code",
            )
    check_password(body.password)
    pin_hash = await asyncio.to_thread(hash_secret, check_pin(body.pin)) if body.pin else None
    doc = {
        "username": body.username,
        "name": body.name,
        "role": "manager",
        "password_hash": await asyncio.to_thread(hash_secret, body.password),
        "pin_hash": pin_hash,
        "disabled": False,
    }
    await svc.call(upsert_user, doc)
    await svc.call(lockout.clear_failures, SETUP_ACCOUNT)
    forget_setup_code(auth.config.data_dir)
    auth.setup_code = None
    return _start_session(request, doc)


# accounts -------------------------------------------------------------------------
@router.get("/api/users")
async def users(request: Request) -> list[Doc]:
    found: list[Doc] = await _svc(request).call(list_users)
    now = time.time()
    locked: dict[str, float] = await _svc(request).call(lockout.locked_accounts, now)
    return [{**u, "locked_until": locked.get(u["username"])} for u in found]


def _save_user(register: Register, doc: Doc) -> Doc:
    """Save an account, but never the change that removes the last manager."""
    rows = register.conn.execute(
        "SELECT username FROM users WHERE role = 'manager' AND disabled = 0"
        " AND password_hash IS NOT NULL"
    ).fetchall()
    before = {r[0] for r in rows}
    after = before - {doc["username"]}
    if doc["role"] == "manager" and not doc["disabled"] and doc["password_hash"]:
        after.add(doc["username"])
    if before and not after:
        raise Conflict("the register must keep one enabled manager with a password", field="role")
    return upsert_user(register, doc)


@router.put("/api/users/{username}")
async def put_user(request: Request, username: str, body: UserIn) -> Doc:
    """Create or change an account; a new password or PIN replaces the old one."""
    svc = _svc(request)
    existing: Doc | None = await svc.call(get_user, username)
    password_hash = None if existing is None else existing["password_hash"]
    pin_hash = None if existing is None else existing["pin_hash"]
    if body.password is not None:
        password_hash = await asyncio.to_thread(hash_secret, check_password(body.password))
    elif body.clear_password:
        password_hash = None
    if body.pin is not None:
        pin_hash = await asyncio.to_thread(hash_secret, check_pin(body.pin))
    elif body.clear_pin:
        pin_hash = None
    if body.role == "manager" and password_hash is None and not body.disabled:
        raise ValidationError("a manager needs a password", field="password")
    if password_hash is None and pin_hash is None and not body.disabled:
        raise ValidationError("give a password or a PIN to log in with", field="pin")
    doc = {
        "username": username,
        "name": body.name,
        "role": body.role,
        "password_hash": password_hash,
        "pin_hash": pin_hash,
        "disabled": body.disabled,
    }
    saved: Doc = await svc.call(_save_user, doc)
    return saved


@router.post("/api/users/{username}/unlock")
async def unlock(request: Request, username: str) -> Doc:
    svc = _svc(request)
    if await svc.call(get_user, username) is None:
        raise NotFound(f"no user {username!r}", field="username")
    await svc.call(lockout.clear_failures, username)
    return {"unlocked": username}


__all__ = ["ROLES", "router"]
