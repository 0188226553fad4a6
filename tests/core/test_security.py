"""Password hashing: correct answers, and memory bounded by a fixed set of hashing threads."""

import asyncio
import threading

from backend.app.core.security import PasswordHasher


def hashing_threads() -> set[threading.Thread]:
    """The hashing threads alive now, as Thread objects.

    Not by `ident`: Python reuses the id of a thread that ended, so a new thread of ours
    could carry the id of another hasher's thread that was alive a moment before.
    """
    return {t for t in threading.enumerate() if t.name.startswith("argon2")}


async def test_verify_accepts_the_password_and_nothing_else():
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)
    try:
        hashed = await hasher.hash("correct horse battery")

        assert hashed.startswith("$argon2id$")
        assert await hasher.verify(hashed, "correct horse battery")
        assert not await hasher.verify(hashed, "correct horse batterY")
        assert not await hasher.verify("not-a-hash", "correct horse battery")
    finally:
        hasher.close()


async def test_hashes_run_on_the_same_few_threads_however_many_wait():
    # A memory-hard hash keeps its memory with the thread that ran it; new threads for new
    # logins would each keep another block, so RSS would creep up under load.
    others = hashing_threads()  # the hashers of apps other tests started
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, max_concurrent=2)
    try:
        seen = []
        for _ in range(3):
            hashes = await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(8)))
            assert len(set(hashes)) == 8
            seen.append(hashing_threads() - others)

        assert 1 <= len(seen[0]) <= 2
        assert seen[0] == seen[1] == seen[2]
    finally:
        hasher.close()


async def test_close_stops_the_threads():
    others = hashing_threads()
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)
    await asyncio.gather(*(hasher.hash("x" * 12) for _ in range(4)))
    threads = hashing_threads() - others
    assert threads

    hasher.close()

    for thread in threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)
