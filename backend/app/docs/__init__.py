"""Generated API documentation and the planning checklist.

`openapi.json` and `api.md` are written by `make docs` (`generate.py`, rendering with
`reference.py`) from the live app; never edit them by hand. `backend_todos.md` is the
hand-kept planning checklist.
"""
