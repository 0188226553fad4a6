"""A won lead becomes a Patient in the EHR: the link and its reads. Functions never commit.

The patient is made by a conditional create on our own identifier (EHR_IDENTIFIER_SYSTEM,
value = the lead id), so a repeated or retried conversion finds the patient the first one
made. The link (`leads.ehr_patient_id`) is written only after the EHR answered, by one
`UPDATE ... WHERE ehr_patient_id IS NULL`: of two concurrent conversions exactly one makes
the link, and the other finds it. An EHR failure leaves the lead as it was, and retrying
is safe.
"""

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.errors import EhrPatientNotLinkedError, LeadNotWonError, NotFoundError
from backend.app.integrations.fhir import EhrClient, PatientRecord
from backend.app.models.lead import Lead, LeadStatus

logger = logging.getLogger("app.crud.lead_ehr")


@dataclass(frozen=True)
class PatientLink:
    """A lead's patient; `created` is True when this call made the link."""

    patient: PatientRecord
    created: bool


async def link_patient(
    session: AsyncSession, *, lead: Lead, ehr: EhrClient, identifier_system: str
) -> PatientLink:
    """Make `lead` a Patient in the EHR and store the link, or return the linked one.

    Args:
        session: the request's unit of work.
        lead: a lead the user may see.
        ehr: the EHR client.
        identifier_system: the URI naming our lead ids in the EHR (EHR_IDENTIFIER_SYSTEM).

    Returns:
        The patient as the EHR holds it now, and whether this call made the link.

    Raises:
        LeadNotWonError: the lead is not `won`.
        NotFoundError: the lead was deleted meanwhile.
    """
    if lead.status != LeadStatus.WON:
        raise LeadNotWonError(f"Lead {lead.id} is {lead.status}; only a won lead can be a patient.")
    if lead.ehr_patient_id is not None:
        return PatientLink(await ehr.read_patient(lead.ehr_patient_id), created=False)
    patient = await ehr.ensure_patient(
        identifier_system=identifier_system,
        identifier_value=str(lead.id),
        name=lead.name,
        phone=lead.phone,
        email=lead.email,
    )
    linked = await session.scalar(
        update(Lead)
        .where(Lead.id == lead.id, Lead.ehr_patient_id.is_(None))
        .values(ehr_patient_id=patient.id)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    if linked is not None:
        logger.info("lead linked to an ehr patient", extra={"lead_id": lead.id})
        return PatientLink(patient, created=True)
    return PatientLink(await _linked_meanwhile(session, lead=lead, ehr=ehr, found=patient), False)


async def _linked_meanwhile(
    session: AsyncSession, *, lead: Lead, ehr: EhrClient, found: PatientRecord
) -> PatientRecord:
    """The patient a concurrent request linked `lead` to while we asked the EHR.

    Raises:
        NotFoundError: the lead was deleted meanwhile.
    """
    stored = await session.scalar(select(Lead.ehr_patient_id).where(Lead.id == lead.id))
    if stored is None:
        raise NotFoundError(f"Lead {lead.id} was not found.")
    return found if stored == found.id else await ehr.read_patient(stored)


async def read_linked_patient(*, lead: Lead, ehr: EhrClient) -> PatientRecord:
    """Read the lead's patient from the EHR, as it is now.

    Raises:
        EhrPatientNotLinkedError: the lead was never converted.
    """
    if lead.ehr_patient_id is None:
        raise EhrPatientNotLinkedError(f"Lead {lead.id} is not linked to a patient in the EHR.")
    return await ehr.read_patient(lead.ehr_patient_id)
