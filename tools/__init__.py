"""Developer tools that run from the repository root (not shipped with the app)."""
