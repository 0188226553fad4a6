from tests.fakes.fhir_fixtures import fhir_fake, fhir_fake_server
from tests.fakes.stripe_fixtures import stripe_fake, stripe_fake_server
from tests.fakes.twilio_fixtures import twilio_fake, twilio_fake_server

__all__ = [
    "fhir_fake",
    "fhir_fake_server",
    "stripe_fake",
    "stripe_fake_server",
    "twilio_fake",
    "twilio_fake_server",
]
