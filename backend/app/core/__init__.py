"""Cross-cutting pieces: settings, database, security, errors, logging, middleware."""
