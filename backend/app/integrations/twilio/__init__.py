"""Twilio SMS integration: send texts, look them up, check webhook signatures.

The app depends on the `SmsSender` interface only; `create_twilio_client(settings)` returns
the Twilio client or, with `SMS_PROVIDER=console` (the default), a sender that only logs.
"""

from backend.app.integrations.twilio.twilio import (
    ConsoleSmsSender,
    ProviderMessage,
    SentSms,
    SmsSender,
    TwilioClient,
    create_twilio_client,
    is_valid_signature,
    opt_keyword,
)

__all__ = [
    "ConsoleSmsSender",
    "ProviderMessage",
    "SentSms",
    "SmsSender",
    "TwilioClient",
    "create_twilio_client",
    "is_valid_signature",
    "opt_keyword",
]
