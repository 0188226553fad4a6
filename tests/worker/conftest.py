from tests.fakes.twilio_fixtures import twilio_fake, twilio_fake_server

__all__ = ["twilio_fake", "twilio_fake_server"]
