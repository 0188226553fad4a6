"""External services, one package per provider: `<name>/<name>.py` is the primary module."""
