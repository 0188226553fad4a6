"""The worker loop over its registered deliveries, and the backoff every delivery uses."""

import asyncio

import pytest

from backend.app.worker import SmsWorker, Worker, create_worker
from backend.app.worker.deliveries import backoff_seconds
from backend.app.worker.loop import LANES
from backend.app.worker.registry import DELIVERIES
from tests.conftest import make_settings


class RecordingDelivery:
    """A delivery that claims `backlog` rows in rounds of at most `limit`, and says so."""

    name = "recording"

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.limits: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.depths = 0
        self.closed = False
        self.drained = asyncio.Event()

    async def run_once(self, *, limit: int | None = None) -> int:
        assert limit is not None
        self.limits.append(limit)
        taken = min(limit, self.backlog)
        self.backlog -= taken
        if not self.backlog:
            self.drained.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)  # a send
        self.in_flight -= 1
        return taken

    async def publish_depth(self) -> None:
        self.depths += 1

    async def aclose(self) -> None:
        self.closed = True


def test_sms_is_the_first_registered_delivery():
    assert next(iter(DELIVERIES)) == "sms"


async def test_a_worker_builds_every_registered_delivery(app):
    worker = create_worker(app.state.settings, app.state.session_factory)
    try:
        assert [d.name for d in worker.deliveries] == list(DELIVERIES)
        assert isinstance(worker.deliveries[0], SmsWorker)
    finally:
        await worker.aclose()


async def test_the_loop_drains_a_backlog_in_overlapping_lanes_then_stops(app, database_url):
    settings = make_settings(database_url, worker_concurrency=10, worker_poll_seconds=0.05)
    delivery = RecordingDelivery(backlog=100)
    worker = Worker(
        settings=settings, session_factory=app.state.session_factory, deliveries=[delivery]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(delivery.drained.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 5)
    await worker.aclose()
    assert set(delivery.limits) == {10 // LANES}  # each lane claims its share
    assert delivery.most_in_flight == LANES  # the lanes' rounds overlap
    assert delivery.depths == 1  # published once per OUTBOX_DEPTH_EVERY
    assert delivery.closed


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [(1, None, 5.0, 10.0), (2, None, 10.0, 20.0), (10, None, 30.0, 60.0), (1, 45.0, 45.0, 45.0)],
)
def test_backoff_doubles_with_jitter_up_to_its_ceiling_and_honours_retry_after(
    attempts, retry_after, low, high
):
    for _ in range(50):
        wait = backoff_seconds(attempts, base=10.0, ceiling=60.0, retry_after=retry_after)
        assert low <= wait <= high
