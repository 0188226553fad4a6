"""The entities texts and payments can be about, and what each does with them.

One entry per entity that is texted or billed (see `core/subjects.py`). `phone` files an
inbound text on every record with the sender's number; `on_payment_settled` lets the entity
react when one of its payments is paid, failed or expired. An entity that is neither texted
nor billed needs no entry, and with no entry at all texts still go to numbers and payments
still settle: the entity just hears nothing of them.
"""

from backend.app.core.subjects import SubjectType

# example:lead start
from backend.app.crud import lead_actions as crud_lead_actions
from backend.app.models.lead import Lead

# example:lead end

_ENTITIES: list[SubjectType] = [
    # example:lead start
    SubjectType(
        model=Lead, phone=Lead.phone, on_payment_settled=crud_lead_actions.on_payment_settled
    ),
    # example:lead end
]

SUBJECT_TYPES: dict[str, SubjectType] = {entity.name: entity for entity in _ENTITIES}
