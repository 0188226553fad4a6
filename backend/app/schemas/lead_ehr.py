"""Wire shape of a lead's link to its Patient in the EHR."""

from datetime import datetime

from pydantic import ConfigDict, Field, JsonValue

from backend.app.integrations.fhir import PatientRecord
from backend.app.schemas.common import OutputModel

_EHR_PATIENT_EXAMPLE: dict[str, JsonValue] = {
    "lead_id": 42,
    "patient_id": "a1b2c3d4e5f6",
    "reference": "Patient/a1b2c3d4e5f6",
    "name": "Ada Lovelace",
    "phone": "+14155550100",
    "email": "ada@example.com",
    "version_id": "1",
    "last_updated": "2026-01-05T09:30:00Z",
}


class EhrPatientRead(OutputModel):
    """A lead's Patient in the EHR, as the EHR holds it now."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EHR_PATIENT_EXAMPLE]})

    lead_id: int
    patient_id: str = Field(description="The Patient's id in the EHR.")
    reference: str = Field(description="The FHIR reference to the Patient: `Patient/<id>`.")
    name: str | None = Field(description="The Patient's name in the EHR (official first).")
    phone: str | None = Field(description="Its first phone number in the EHR (mobile first).")
    email: str | None = Field(description="Its first email address in the EHR.")
    version_id: str | None = Field(description="The Patient's version (`meta.versionId`).")
    last_updated: datetime | None = Field(
        description="When the EHR last changed the Patient (`meta.lastUpdated`), in UTC."
    )

    @classmethod
    def of(cls, *, lead_id: int, patient: PatientRecord) -> "EhrPatientRead":
        """The answer for `lead_id` linked to `patient`."""
        return cls(
            lead_id=lead_id,
            patient_id=patient.id,
            reference=patient.reference,
            name=patient.name,
            phone=patient.phone,
            email=patient.email,
            version_id=patient.version_id,
            last_updated=patient.last_updated,
        )
