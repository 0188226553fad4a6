"""Fixtures of the API tests beyond tests/conftest.py: the Stripe stand-in and its app."""

from tests.fakes.stripe_fixtures import stripe_app, stripe_client, stripe_fake, stripe_fake_server

__all__ = ["stripe_app", "stripe_client", "stripe_fake", "stripe_fake_server"]
