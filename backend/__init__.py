"""The lead tracker backend."""
