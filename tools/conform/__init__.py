"""The conformance checker: the MUST list of backend_overview.md, checked mechanically.

`make conform` (`python -m tools.conform`, `--json` for machines, `--rules` for the list)
reads the source with `ast` and the live app (`create_app`) with its OpenAPI, and prints
`file:line: rule: what is wrong (fix: hint)` for each problem; it exits 1 if there is any.
"""
