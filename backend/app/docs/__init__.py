"""Generated API documentation, the recorded API contract and the planning checklist.

`openapi.json` and `api.md` are written by `make docs` (`generate.py`, rendering with
`reference.py`) from the live app; never edit them by hand. `baselines/openapi.v<N>.json` is
the contract of API version N, written only by `make api-baseline` (`api_baseline.py`);
`compat.py` finds the changes that break it. `backend_todos.md` is the hand-kept planning
checklist.
"""
