"""EHR routes: a won lead becomes a Patient in the EHR, and its link is read back.

The POST calls the EHR inside the request (the answer carries the patient) and honours
`Idempotency-Key` (see `core/idempotency.py`). Both answers read the patient from the EHR,
so they show it as the EHR holds it now.
"""

from fastapi import APIRouter, Response, status

from backend.app.core.deps import EhrClientDep, SessionDep, SettingsDep
from backend.app.core.errors import (
    AppError,
    CircuitOpenError,
    EhrAuthError,
    EhrError,
    EhrMultipleMatchesError,
    EhrNoAnswerError,
    EhrNotConfiguredError,
    EhrPatientNotLinkedError,
    EhrRequestRejectedError,
    EhrResourceDeletedError,
    EhrResourceNotFoundError,
    EhrUnavailableError,
    LeadNotWonError,
    NotFoundError,
    error_responses,
)
from backend.app.core.idempotency import IDEMPOTENCY_ERRORS, Idempotency, replayable
from backend.app.crud import lead_ehr as crud_lead_ehr
from backend.app.routers.leads import VisibleLead
from backend.app.schemas.lead_ehr import EhrPatientRead

router = APIRouter(prefix="/leads/{lead_id}/ehr-patient", tags=["ehr"])

# What any call to the EHR can end in (the client is behind an interface: listed by hand).
EHR_CALL_ERRORS: tuple[type[AppError], ...] = (
    EhrError,
    EhrNoAnswerError,
    EhrAuthError,
    EhrUnavailableError,
    CircuitOpenError,
    EhrNotConfiguredError,
)
# A read of the linked patient: it may since have been deleted in the EHR.
EHR_READ_ERRORS: tuple[type[AppError], ...] = (EhrResourceNotFoundError, EhrResourceDeletedError)


@router.post(
    "",
    response_model=EhrPatientRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(
            NotFoundError,
            *EHR_READ_ERRORS,
            LeadNotWonError,
            EhrMultipleMatchesError,
            *IDEMPOTENCY_ERRORS,
            EhrRequestRejectedError,
            *EHR_CALL_ERRORS,
        ),
        200: {
            "model": EhrPatientRead,
            "description": "The lead was already linked: its patient, read from the EHR now.",
        },
        201: replayable("The lead is now linked to its patient in the EHR (created or found)."),
    },
)
async def link_ehr_patient(
    lead: VisibleLead,
    session: SessionDep,
    settings: SettingsDep,
    ehr: EhrClientDep,
    idempotency: Idempotency,
    response: Response,
) -> EhrPatientRead | Response:
    """Make a won lead a Patient in the EHR (from its name, phone and email) and link it.

    201 when this request made the link, 200 when the lead was already linked: one lead
    is never two patients, however often or concurrently this is called. The patient is
    made by a conditional create on the lead's id, so a retry after an EHR failure (502/503,
    nothing stored on the lead) finds the patient an earlier try made.

    Raises:
        NotFoundError: no such lead, or another member's.
        LeadNotWonError: the lead's status is not `won` (409).
        EhrMultipleMatchesError: the EHR holds several patients with this lead's id (409).
        EhrRequestRejectedError: the EHR refused the patient (502).
        EhrResourceNotFoundError: the linked patient is gone from the EHR (404).
        EhrError: the EHR failed or did not answer (502).
        EhrUnavailableError: the EHR is down or rate limiting (503).
        CircuitOpenError: the EHR failed too often in a row; paused for a while (503).
        EhrNotConfiguredError: EHR_PROVIDER=none (503).
        IdempotencyKeyReusedError: the key was used for another request.
        IdempotencyKeyInUseError: the key's first request is still running.
    """

    async def link() -> EhrPatientRead:
        link = await crud_lead_ehr.link_patient(
            session, lead=lead, ehr=ehr, identifier_system=settings.ehr_identifier_system
        )
        response.status_code = status.HTTP_201_CREATED if link.created else status.HTTP_200_OK
        return EhrPatientRead.of(lead_id=lead.id, patient=link.patient)

    return await idempotency.run(None, link, response=response)


@router.get(
    "",
    response_model=EhrPatientRead,
    responses=error_responses(
        NotFoundError, EhrPatientNotLinkedError, *EHR_READ_ERRORS, *EHR_CALL_ERRORS
    ),
)
async def read_ehr_patient(lead: VisibleLead, ehr: EhrClientDep) -> EhrPatientRead:
    """Return the lead's link and its patient, read from the EHR now.

    Raises:
        NotFoundError: no such lead, or another member's.
        EhrPatientNotLinkedError: the lead was never linked (404).
        EhrResourceNotFoundError: the patient is gone from the EHR (404).
        EhrError: the EHR failed or did not answer (502).
        EhrUnavailableError: the EHR is down or rate limiting (503).
        CircuitOpenError: the EHR failed too often in a row; paused for a while (503).
        EhrNotConfiguredError: EHR_PROVIDER=none (503).
    """
    patient = await crud_lead_ehr.read_linked_patient(lead=lead, ehr=ehr)
    return EhrPatientRead.of(lead_id=lead.id, patient=patient)
