from tests.fakes.stripe_fixtures import stripe_fake, stripe_fake_server
from tests.fakes.twilio_fixtures import twilio_fake, twilio_fake_server

__all__ = ["stripe_fake", "stripe_fake_server", "twilio_fake", "twilio_fake_server"]
