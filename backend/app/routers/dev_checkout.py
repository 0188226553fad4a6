"""The fake checkout page (BILLING_PROVIDER=fake only; never in production or the schema).

`GET /dev/checkout/{session_id}` shows the payment with Pay, Fail and Expire buttons. Each
posts to `/dev/checkout/{session_id}/{action}`, which builds the Stripe event that outcome
would cause, signs it with STRIPE_WEBHOOK_SECRET and delivers it through this app's own
`POST /api/v1/webhooks/stripe`, over ASGI, exactly as Stripe's would arrive. The page runs
under a strict Content-Security-Policy (its own script and style, by hash) and cannot be framed.
"""

import base64
import hashlib
import html
import json
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from backend.app.core.deps import SessionDep, SettingsDep
from backend.app.core.errors import ConflictError, NotFoundError
from backend.app.crud import payments as crud_payments
from backend.app.integrations.stripe import FAKE_CHECKOUT_PATH, fake_checkout_event, sign_payload
from backend.app.models.payment import Payment, PaymentStatus

router = APIRouter(prefix=FAKE_CHECKOUT_PATH, include_in_schema=False)

SessionId = Annotated[str, Path(pattern=r"^cs_[A-Za-z0-9_]{1,250}$")]
WEBHOOK_PATH = "/api/v1/webhooks/stripe"

# The page's own script and style, allowed by their hashes: the page may run exactly these,
# fetch only this app, and never be framed (clickjacking a Pay button).
PAGE_STYLE = """body{font-family:sans-serif;max-width:32rem;margin:3rem auto}
button{font-size:1.1rem;margin-right:.5rem}"""
PAGE_SCRIPT = """
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const response = await fetch(location.pathname + "/" + button.dataset.action,
                                 {method: "POST"});
    const body = await response.json();
    const status = body.payment_status || body.code;
    document.getElementById("status").textContent = status;
    document.body.dataset.status = status;
    document.querySelectorAll("button").forEach((b) => b.remove());
    const result = document.getElementById("result");
    result.textContent = "Payment " + status + ". Stripe would now send the payer to ";
    const link = document.createElement("a");
    link.href = body.next_url || "#";
    link.textContent = body.next_url || "";
    result.appendChild(link);
  });
}
"""


def _csp_hash(source: str) -> str:
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return f"'sha256-{digest}'"


PAGE_CSP = (
    f"default-src 'none'; script-src {_csp_hash(PAGE_SCRIPT)}; "
    f"style-src {_csp_hash(PAGE_STYLE)}; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class FakeCheckoutResult(BaseModel):
    """What happened after a button of the fake page was pressed."""

    payment_status: PaymentStatus
    webhook_status: int
    next_url: str


async def _pending_payment(session: SessionDep, session_id: str) -> Payment:
    payment = await crud_payments.get_by_session_id(session, session_id=session_id)
    if payment is None:
        raise NotFoundError(f"Checkout session {session_id} was not found.")
    return payment


@router.get("/{session_id}")
async def fake_checkout_page(session_id: SessionId, session: SessionDep) -> HTMLResponse:
    """Show the fake checkout page of one payment.

    Raises:
        NotFoundError: no payment has this checkout session.
    """
    payment = await _pending_payment(session, session_id)
    return HTMLResponse(_render(payment), headers={"Content-Security-Policy": PAGE_CSP})


@router.post("/{session_id}/{action}", response_model=FakeCheckoutResult)
async def fake_checkout_action(
    session_id: SessionId,
    action: Literal["pay", "fail", "expire"],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> FakeCheckoutResult:
    """Send the signed Stripe event of `action` to the webhook; return the new status.

    Raises:
        NotFoundError: no payment has this checkout session.
        ConflictError: the payment is no longer pending.
    """
    payment = await _pending_payment(session, session_id)
    if payment.status is not PaymentStatus.PENDING:
        raise ConflictError(f"This checkout is over: the payment is {payment.status.value}.")
    event = fake_checkout_event(
        action=action,
        session_id=session_id,
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
    )
    payload = json.dumps(event)
    signature = sign_payload(payload, settings.stripe_webhook_secret.get_secret_value())
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake-stripe") as http:
        delivered = await http.post(
            WEBHOOK_PATH,
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
    await session.refresh(payment)
    next_url = settings.checkout_success_url if action == "pay" else settings.checkout_cancel_url
    return FakeCheckoutResult(
        payment_status=payment.status,
        webhook_status=delivered.status_code,
        next_url=next_url.replace("{CHECKOUT_SESSION_ID}", session_id),
    )


def _render(payment: Payment) -> str:
    description = html.escape(payment.description or f"Payment {payment.id}")
    amount = f"{payment.amount} {html.escape(payment.currency.upper())} (minor units)"
    status = html.escape(payment.status.value)
    buttons = (
        '<button id="pay" data-action="pay">Pay</button> '
        '<button id="fail" data-action="fail">Fail</button> '
        '<button id="expire" data-action="expire">Expire</button>'
        if payment.status is PaymentStatus.PENDING
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake checkout</title>
<style>{PAGE_STYLE}</style></head>
<body data-status="{status}">
<h1>Fake checkout</h1>
<p>Development only: no money moves. Each button sends the Stripe event it stands for,
signed with STRIPE_WEBHOOK_SECRET, to <code>{WEBHOOK_PATH}</code>.</p>
<p><strong>{description}</strong><br>{amount}</p>
<p>Status: <span id="status">{status}</span></p>
<p>{buttons}</p>
<p id="result"></p>
<script>{PAGE_SCRIPT}</script>
</body></html>
"""
