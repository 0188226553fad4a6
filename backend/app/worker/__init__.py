"""Background work: the worker loop and its deliveries (`python -m backend.app.worker`)."""

from backend.app.worker.deliveries import Delivery
from backend.app.worker.loop import (
    BackgroundWorker,
    Worker,
    create_worker,
    run_worker,
    run_worker_process,
)
from backend.app.worker.sms_worker import SmsWorker

__all__ = [
    "BackgroundWorker",
    "Delivery",
    "SmsWorker",
    "Worker",
    "create_worker",
    "run_worker",
    "run_worker_process",
]
