"""Remove the worked example (the lead tracker's leads) from this repository.

`make remove-example` (`python -m tools.remove_example`) deletes the files of the lead slice
(`manifest.py`), strips the lead lines that shared files keep between marker comments,
takes the lead routers and model out of `main.py` and `models/__init__.py` (as the generator's
`unregister_*` would), appends a migration revision that drops the `leads` table, and
regenerates the API docs and the API baseline. See "The worked example" in
`backend/backend_overview.md`.
"""
