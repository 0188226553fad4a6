from tests.fakes.twilio_fixtures import twilio_fake, twilio_fake_server
from tests.spans import spans

__all__ = ["spans", "twilio_fake", "twilio_fake_server"]
