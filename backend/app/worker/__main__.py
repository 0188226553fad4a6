"""Run the worker: `python -m backend.app.worker` (also `python -m backend.app.cli worker`).

It runs every registered delivery (SMS first; `worker/registry.py`).

Settings come from the environment, as for the API. Run as many processes as you like on
PostgreSQL; SIGTERM or Ctrl-C finishes the current round, then exits.
"""

import sys

from backend.app.core.config import get_settings
from backend.app.core.logging import configure_logging
from backend.app.worker.loop import run_worker_process


def main() -> int:
    """Run the worker until SIGTERM/SIGINT; return the exit status."""
    settings = get_settings()
    configure_logging(settings.log_level)
    run_worker_process(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
