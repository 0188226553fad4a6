"""Password hashing (argon2id) and access tokens (JWT, HS256)."""

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.app.core.config import Settings
from backend.app.core.errors import UnauthorizedError

JWT_ALGORITHM = "HS256"
_USER_ID = re.compile(r"[1-9][0-9]{0,18}")
MAX_USER_ID = 2**63 - 1  # a BIGINT


class PasswordHasher:
    """Hash and verify passwords off the event loop, on a few threads of its own.

    argon2id is memory-hard: each hash takes `memory_kib` of RAM. Hashes run on a pool of
    `max_concurrent` threads that lives as long as the hasher, so 32 concurrent logins cost
    `max_concurrent * memory_kib`, not 32x, and stay flat: the same threads reuse the memory
    their allocator kept. (On the shared thread pool, idle threads expire and new ones start,
    each keeping its own freed block: RSS crept up by 80 MiB in 48 s of logins.)
    Parameters follow OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane).
    """

    def __init__(
        self, *, memory_kib: int = 19 * 1024, time_cost: int = 2, max_concurrent: int = 2
    ) -> None:
        self._hasher = Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)
        self._threads = ThreadPoolExecutor(max_concurrent, thread_name_prefix="argon2")
        self.dummy_hash = self._hasher.hash("timing-equaliser-not-a-password")

    async def hash(self, password: str) -> str:
        """Return the argon2id hash of `password`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._hasher.hash, password)

    async def verify(self, hashed: str, password: str) -> bool:
        """Return whether `password` matches `hashed` (False for a malformed hash)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._verify, hashed, password)

    def close(self) -> None:
        """Stop the hashing threads once the hashes in progress finish."""
        self._threads.shutdown(wait=False)

    def needs_rehash(self, hashed: str) -> bool:
        """Whether `hashed` was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(hashed)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False


def create_access_token(user_id: int, settings: Settings) -> tuple[str, int]:
    """Sign an access token for `user_id`.

    Returns:
        The token and its lifetime in seconds.
    """
    lifetime = timedelta(minutes=settings.access_token_expire_minutes)
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "type": "access"}
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=JWT_ALGORITHM)
    return token, int(lifetime.total_seconds())


def decode_access_token(token: str, settings: Settings) -> int:
    """Return the user id of a valid, unexpired access token.

    Raises:
        UnauthorizedError: the token is malformed, forged, expired or not an access token.
    """
    return _verify(token, settings)[0]


class VerifiedTokens:
    """A bounded cache of access tokens already verified: token -> (user id, expiry).

    Checking a JWT's HMAC signature costs more than the rest of reading the token; a client
    sends the same token on every request. A hit is still checked against the token's
    expiry, so an expired token is refused as before. The user row is read on every request
    all the same (`deps.get_current_user`), so a deactivated user is refused at once. The
    cache lives in the app (made in `main.create_app`), so a new `SECRET_KEY` starts empty.
    When full, the oldest entry makes room.
    """

    def __init__(self, settings: Settings, *, max_entries: int = 10_000) -> None:
        self._settings = settings
        self._max_entries = max_entries
        self._verified: dict[str, tuple[int, float]] = {}

    def user_id(self, token: str) -> int:
        """Return the user id of a valid, unexpired access token.

        Raises:
            UnauthorizedError: as `decode_access_token`.
        """
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        self._verified.pop(token, None)
        user_id, expires_at = _verify(token, self._settings)
        if len(self._verified) >= self._max_entries:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user_id, expires_at)
        return user_id


def _verify(token: str, settings: Settings) -> tuple[int, float]:
    """Return the user id and expiry (a UNIX time) of a valid, unexpired access token.

    Raises:
        UnauthorizedError: the token is malformed, forged, expired or not an access token.
    """
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("The access token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError from exc
    subject, expires_at = claims.get("sub"), claims.get("exp")
    if claims.get("type") != "access" or not isinstance(subject, str):
        raise UnauthorizedError
    if not _USER_ID.fullmatch(subject) or int(subject) > MAX_USER_ID:
        raise UnauthorizedError  # ASCII digits only: str.isdigit() also takes "٣"
    if not isinstance(expires_at, int | float):
        raise UnauthorizedError
    return int(subject), float(expires_at)
