"""Named people in the workspace: their roles, their sessions, CSRF tokens and the sign-in throttle.

Pure: no web framework, no database. A session lives on the server (the
adapter keeps it under ``session_key`` of the cookie's token, ``Session.over``
says when it ended); the routes put ``csrf_token`` into every form that changes something and
check it with ``csrf_ok``, and ask ``Throttle.wait_for`` before checking a
password. Secrets are bytes from settings, passed in by the caller.

CSRF tokens and sealed values (``seal``) are HMAC-SHA256 (RFC 2104) over text
the server wrote; nothing the client sends is decoded into objects (no pickle,
no JSON) before its MAC is checked, and a token that fails any check is simply nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from services.workspace.passwords import weakness

NAME_MAX: Final = 64
PASSWORD_MIN: Final = 12
PASSWORD_MAX: Final = 1024  # argon2 takes any length; a cap keeps a huge body from costing a hash
MIN_SECRET_BYTES: Final = 32  # HMAC-SHA256 key: at least the hash's output size (RFC 2104, section 3)
TOKEN_MAX: Final = 512  # a session token is far shorter; longer input is refused before any work
_NAME = re.compile(r"[^\W_]([^\W_]|[ .'-])*", re.UNICODE)  # letters and digits, then also space . ' -
_SESSION_VERSION: Final = "s1"


class PersonRole(StrEnum):
    """What a person may do in the workspace; a person may hold several."""

    PRODUCTION = "production"
    TYPE_APPROVAL = "type-approval"
    REVIEWER = "reviewer"
    COMPLIANCE_LEAD = "compliance-lead"
    INTEGRATION = "integration"
    VIEWER = "viewer"


class IdentityError(Exception):
    """The workspace's errors about people: bad input, a name taken, a name unknown."""


class InvalidField(IdentityError):
    """A value a person typed breaks its rule; ``str()`` is one line naming the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class UserExists(IdentityError):
    """A user of that name exists already."""


class UnknownUser(IdentityError):
    """No user has that name."""


@dataclass(frozen=True)
class Person:
    """A signed-in person: their name and roles.

    Everyone signed in may look at everything (``can(VIEWER)`` is always true);
    each change needs its role, so a person who holds only ``viewer`` can change nothing.
    """

    name: str
    roles: frozenset[PersonRole]

    def can(self, role: PersonRole) -> bool:
        return role is PersonRole.VIEWER or role in self.roles

    @property
    def read_only(self) -> bool:
        return not (self.roles - {PersonRole.VIEWER})


def check_name(name: str) -> str:
    """The name as stored (Unicode NFC), or ``InvalidField``: 1-64 letters, digits, space . - '."""
    normal = unicodedata.normalize("NFC", name)
    if not 1 <= len(normal) <= NAME_MAX:
        raise InvalidField("name", f"must be 1 to {NAME_MAX} characters, got {len(normal)}")
    if normal != normal.strip() or "  " in normal or not _NAME.fullmatch(normal):
        raise InvalidField(
            "name",
            f"{name!r} must start with a letter or digit and hold only letters, digits, "
            "single spaces and . - '",
        )
    return normal


def check_roles(roles: Iterable[str]) -> frozenset[PersonRole]:
    """Role names → roles, or ``InvalidField`` naming the unknown one; at least one role."""
    found: set[PersonRole] = set()
    for value in [roles] if isinstance(roles, str) else roles:
        try:
            found.add(PersonRole(value))
        except ValueError:
            known = ", ".join(role.value for role in PersonRole)
            raise InvalidField("role", f"unknown role {value!r}; roles are {known}") from None
    if not found:
        raise InvalidField("role", "give at least one role")
    return frozenset(found)


def check_password(password: str) -> str:
    """The password, or ``InvalidField``: 12 to 1024 characters and not easy to guess (``passwords.weakness``).

    After NIST SP 800-63B: a length and a list of refused values (common,
    repeated, sequential), no composition rules.
    """
    if len(password) < PASSWORD_MIN:
        raise InvalidField("password", f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidField("password", f"must be at most {PASSWORD_MAX} characters")
    why = weakness(password)
    if why is not None:
        raise InvalidField("password", f"is {why}: choose another")
    return password


# -- sessions -------------------------------------------------------------------------------

SESSION_TOKEN_BYTES: Final = 32  # 256 random bits: the cookie's value, never stored
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32), and nothing else
TOUCH_AT_MOST: Final = dt.timedelta(minutes=1)  # last-seen is written at most this often


class SessionSource(StrEnum):
    """How a person signed in: a local password, or the company's OpenID provider."""

    LOCAL = "local"
    OIDC = "oidc"


@dataclass(frozen=True)
class SessionRules:
    """How long a session lives: ``idle`` without a request, ``lifetime`` at most from sign-in."""

    idle: dt.timedelta
    lifetime: dt.timedelta

    def __post_init__(self) -> None:
        if self.idle <= dt.timedelta(0) or self.lifetime <= dt.timedelta(0):
            raise ValueError("a session needs a positive idle timeout and lifetime")

    @property
    def touch_every(self) -> dt.timedelta:
        """How stale last-seen may get before it is written again: a minute, or a quarter of a short idle timeout."""
        return min(TOUCH_AT_MOST, self.idle / 4)


@dataclass(frozen=True)
class Session:
    """A session as the server keeps it; ``key`` is the hash of the cookie's token, never the token."""

    key: str
    name: str
    roles: frozenset[PersonRole]
    source: SessionSource
    created: dt.datetime
    last_seen: dt.datetime
    address: str = ""
    agent: str = ""
    id_token: str = ""  # the provider's ID token, sent back as the hint when signing out there

    @property
    def person(self) -> Person:
        return Person(self.name, self.roles)

    def ends_at(self, rules: SessionRules) -> dt.datetime:
        """When it ends unless used again: idle timeout or absolute lifetime, whichever comes first."""
        return min(self.last_seen + rules.idle, self.created + rules.lifetime)

    def over(self, rules: SessionRules, now: dt.datetime) -> bool:
        return now >= self.ends_at(rules)

    def needs_touch(self, rules: SessionRules, now: dt.datetime) -> bool:
        return now - self.last_seen >= rules.touch_every


def new_session_token() -> str:
    """A fresh unguessable session token: what the cookie carries."""
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def session_key(token: object) -> str | None:
    """The stored key of ``token`` (SHA-256, hex), or None when it is not a token's shape; never raises.

    Only the hash is stored, so a copy of the database opens no session. The
    token carries 256 random bits, so a plain hash (no salt, no stretching) is enough.
    """
    if not isinstance(token, str) or not _TOKEN_TEXT.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def seal(purpose: str, fields: Iterable[str], secret: bytes, now: dt.datetime, ttl: dt.timedelta) -> str:
    """Short-lived text the client keeps for the server (the sign-in's state and nonce), signed and expiring.

    ``base64url(payload).base64url(HMAC-SHA256(purpose, payload))``, the payload
    ``s1|expires|field|…`` (epoch seconds); a field must not hold ``|``.
    """
    _check_secret(secret)
    values = list(fields)
    if ttl <= dt.timedelta(0) or any("|" in value for value in values):
        raise ValueError("a sealed value needs a positive ttl and fields without '|'")
    payload = "|".join((_SESSION_VERSION, str(int((now + ttl).timestamp())), *values)).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose.encode(), payload))}"


def unseal(purpose: str, token: object, secret: bytes, now: dt.datetime) -> list[str] | None:
    """The fields ``seal`` signed for ``purpose``, or None when malformed, forged or expired; never raises."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > TOKEN_MAX or token.count(".") != 1:
        return None
    encoded, _, mac_text = token.partition(".")
    data, mac = _unb64(encoded), _unb64(mac_text)
    if data is None or mac is None or not hmac.compare_digest(mac, _mac(secret, purpose.encode(), data)):
        return None
    parts = data.decode("utf-8", "replace").split("|")  # from here on: text this server signed
    if len(parts) < 2 or parts[0] != _SESSION_VERSION:
        return None
    try:
        expires = dt.datetime.fromtimestamp(int(parts[1]), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return parts[2:] if now < expires else None


# -- cross-site request forgery ---------------------------------------------------------------


def csrf_token(session_id: str, secret: bytes) -> str:
    """The token every changing form of this session carries (synchroniser token bound to the session)."""
    _check_secret(secret)
    return _b64(_mac(secret, b"csrf", session_id.encode()))


def csrf_ok(token: object, session_id: str, secret: bytes) -> bool:
    """Whether ``token`` is this session's CSRF token; compared in constant time."""
    if not isinstance(token, str) or not session_id or len(token) > TOKEN_MAX:
        return False
    return hmac.compare_digest(token.encode(), csrf_token(session_id, secret).encode())


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, purpose: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 with the purpose in front, so a CSRF token is never a valid session MAC."""
    return hmac.digest(secret, purpose + b"\x00" + data, hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text or not text.isascii():
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None  # one spelling per token: no unused bits set


# -- the sign-in throttle ----------------------------------------------------------------------


@dataclass
class _Failures:
    count: int
    last: float


@dataclass
class Throttle:
    """Slows down guessing a password, without letting one person's mistakes lock out their plant.

    Per account (the name, case-folded, known or not): the n-th consecutive
    failure makes the next attempt for that name wait ``first_s * 2**(n-1)``
    seconds, at most ``max_s`` (15 min), from any address; a success resets
    it, and so does ``forget_s`` without a failure. Per address only far above
    one person's mistakes: at most ``address_limit`` failures in any
    ``address_window_s`` (100 in 10 min), then that address waits until the
    oldest leaves the window. A plant signs in from behind one proxy, so a
    per-address delay at one person's scale would stop every account there;
    guessing many names from one address still meets the address limit.

    Times are seconds from an injected clock (the caller's ``now``). At most
    ``max_keys`` names and as many addresses are kept, the least recently
    failed dropped first, so a flood of names costs bounded memory. The caller
    refuses an attempt while ``wait_for`` is above zero, without checking the password.
    """

    first_s: float = 1.0
    max_s: float = 900.0
    forget_s: float = 3600.0
    address_limit: int = 100
    address_window_s: float = 600.0
    max_keys: int = 10_000
    _names: OrderedDict[str, _Failures] = field(default_factory=OrderedDict, repr=False)
    _addresses: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s <= self.forget_s:
            raise ValueError("the throttle needs 0 < first_s <= max_s <= forget_s")
        if self.address_limit < 1 or self.address_window_s <= 0 or self.max_keys < 1:
            raise ValueError("the throttle needs a positive address limit, window and key count")

    def wait_for(self, name: str, address: str, now: float) -> float:
        """Seconds the next attempt for ``name`` from ``address`` must still wait (0: go ahead)."""
        return max(self._name_wait(name_key(name), now), self._address_wait(address, now))

    def failed(self, name: str, address: str, now: float) -> None:
        """Count a wrong password for ``name`` from ``address``."""
        key = name_key(name)
        entry = self._names.pop(key, None)
        if entry is None or now - entry.last > self.forget_s:
            entry = _Failures(0, now)
        entry.count, entry.last = entry.count + 1, now
        self._names[key] = entry  # re-inserted last: the most recent
        window = self._addresses.pop(address, None) or deque(maxlen=self.address_limit)
        window.append(now)
        self._addresses[address] = window
        for kept in (self._names, self._addresses):
            while len(kept) > self.max_keys:
                kept.popitem(last=False)

    def succeeded(self, name: str, address: str) -> None:
        """A right password resets its name; the address keeps its count (others sign in from there too)."""
        self._names.pop(name_key(name), None)

    def __len__(self) -> int:
        return len(self._names) + len(self._addresses)

    def _name_wait(self, key: str, now: float) -> float:
        entry = self._names.get(key)
        if entry is None or now - entry.last > self.forget_s:
            return 0.0
        delay = min(self.max_s, self.first_s * 2 ** min(entry.count - 1, 30))
        return max(0.0, entry.last + delay - now)

    def _address_wait(self, address: str, now: float) -> float:
        window = self._addresses.get(address)
        if window is None or len(window) < self.address_limit:
            return 0.0
        return max(0.0, window[0] + self.address_window_s - now)  # the window holds the newest failures


def name_key(name: str) -> str:
    """The throttle's key of an account: the name as typed, Unicode NFC, case-folded."""
    return unicodedata.normalize("NFC", name).casefold()


# -- the audit of people's actions -------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """One action of a person: who, when, what (``action`` on ``target``) and what changed."""

    person: str
    action: str
    target: str
    change: Mapping[str, Any]
    at: dt.datetime

    def change_text(self) -> str:
        """The change as one line of JSON, keys sorted: what a page shows."""
        return json.dumps(self.change, sort_keys=True, ensure_ascii=False, default=str)
