"""Stand-ins for external providers, served on 127.0.0.1 by the tests."""
