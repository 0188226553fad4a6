"""The entity generator: `python -m tools.generate SPEC...` (`make entity SPEC=...`)."""
