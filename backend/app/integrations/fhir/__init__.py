"""EHR integration over FHIR R4: patients made and read in the clinic's EHR.

The app depends on the `EhrClient` interface only; `create_fhir_client(settings)` returns the
FHIR client (EHR_PROVIDER=fhir), the same client on an in-process FHIR server (`fake`, the
default outside production) or `DisabledEhr` (`none`, the default in production).
"""

from backend.app.integrations.fhir.fhir import (
    DisabledEhr,
    EhrClient,
    FhirClient,
    create_fhir_client,
)
from backend.app.integrations.fhir.memory import InMemoryFhirServer
from backend.app.integrations.fhir.resources import FhirResource, PatientRecord, SearchResult
from backend.app.integrations.fhir.smart import SmartBackendAuth, StaticToken, load_private_key

__all__ = [
    "DisabledEhr",
    "EhrClient",
    "FhirClient",
    "FhirResource",
    "InMemoryFhirServer",
    "PatientRecord",
    "SearchResult",
    "SmartBackendAuth",
    "StaticToken",
    "create_fhir_client",
    "load_private_key",
]
