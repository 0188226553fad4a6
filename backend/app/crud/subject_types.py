"""The entities texts and payments can be about, and what each does with them.

One entry per entity that is texted or billed (see `core/subjects.py`). `phone` files an
inbound text on every record with the sender's number; `on_payment_settled` lets the entity
react when one of its payments is paid, failed or expired. An entity that is neither texted
nor billed needs no entry.
"""

from backend.app.core.subjects import SubjectType
from backend.app.crud import lead_actions as crud_lead_actions
from backend.app.models.lead import Lead

SUBJECT_TYPES: dict[str, SubjectType] = {
    subject_type.name: subject_type
    for subject_type in [
        SubjectType(
            model=Lead, phone=Lead.phone, on_payment_settled=crud_lead_actions.on_payment_settled
        ),
    ]
}
