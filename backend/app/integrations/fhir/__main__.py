"""`python -m backend.app.integrations.fhir`: print the JWKS to register with the EHR."""

from backend.app.integrations.fhir.smart import print_jwks

print_jwks()
