"""Background work: the SMS send loop (`python -m backend.app.worker`)."""

from backend.app.worker.sms_worker import (
    BackgroundWorker,
    SmsWorker,
    run_worker,
    run_worker_process,
)

__all__ = ["BackgroundWorker", "SmsWorker", "run_worker", "run_worker_process"]
