"""What belongs to the worked example, and therefore goes when it is removed.

Three lists, checked by `tests/remove_example/test_manifest.py` so that they cannot rot:

- `FILES`: files deleted whole. Every file whose path names a lead is here (or in `KEPT`),
  every file here exists, and no file that stays imports one of them.
- `ROUTERS`: router modules registered in `backend/app/main.py`, taken out of it.
- `SPEC`: the lead's entity spec; its model (and enums) are taken out of
  `backend/app/models/__init__.py` the way the generator put them in.

Lines of shared files that only make sense with leads sit between two marker comments, a
line containing `example:lead start` and one containing `example:lead end` (any comment
syntax: `#`, `<!-- -->`, `--`); both markers and everything between them are deleted.
"""

SPEC = "backend/app/docs/specs/lead.yaml"

ROUTERS = ["leads", "messages", "payments", "lead_ehr"]

FILES = [
    # The lead slice: generated files, then its rules over SMS, billing and the EHR.
    "backend/app/models/lead.py",
    "backend/app/schemas/lead.py",
    "backend/app/crud/leads.py",
    "backend/app/routers/leads.py",
    "backend/app/docs/entities/lead.md",
    "backend/app/docs/specs/lead.yaml",
    "backend/app/crud/lead_actions.py",
    "backend/app/crud/lead_ehr.py",
    "backend/app/routers/lead_ehr.py",
    "backend/app/schemas/lead_ehr.py",
    # `/leads/{id}/messages` and `/leads/{id}/payments`; their wire shapes carry `lead_id`.
    "backend/app/routers/messages.py",
    "backend/app/routers/payments.py",
    "backend/app/schemas/message.py",
    "backend/app/schemas/payment.py",
    # Tests of the lead endpoints and of what only leads reach (idempotent creates, races).
    "tests/api/test_leads.py",
    "tests/api/test_leads_list.py",
    "tests/api/test_lead_ehr.py",
    "tests/api/test_lead_messages.py",
    "tests/api/test_lead_payments.py",
    "tests/api/test_idempotency.py",
    "tests/api/test_idempotent_creates.py",
    "tests/api/test_races.py",
    "tests/e2e/test_ehr_serve.py",
    "tests/e2e/test_fake_checkout_browser.py",
    "tests/generate/test_lead_spec.py",
    # The conformance checker's deliberately broken router is built on the lead slice.
    "tests/conform/broken_router.py",
    # The benchmark drives lead CRUD (the worker's benchmark, bench_worker.py, stays).
    "tests/bench/run.py",
    "tests/bench/harness.py",
    "tests/bench/baseline_app.py",
    "tests/bench/data_layer_app.py",
    "tests/bench/audit_cost.py",
    "tests/bench/test_yardsticks.py",
    "tests/bench/lua/common.lua",
    "tests/bench/lua/create.lua",
    "tests/bench/lua/get.lua",
    "tests/bench/lua/list.lua",
    "tests/bench/lua/login.lua",
    "tests/bench/lua/update.lua",
    # This command and its tests: nothing is left for them to do.
    "tools/remove_example/__init__.py",
    "tools/remove_example/__main__.py",
    "tools/remove_example/manifest.py",
    "tools/remove_example/markers.py",
    "tools/remove_example/remove.py",
    "tools/remove_example/lead_revision.py",
    "tests/remove_example/__init__.py",
    "tests/remove_example/test_lead_revision.py",
    "tests/remove_example/test_manifest.py",
    "tests/remove_example/test_removal.py",
]

# Files that name leads and stay: migration history that deployed databases already ran.
KEPT = [
    "backend/migrations/versions/0001_users_and_leads.py",
    "backend/migrations/versions/0005_lead_ehr_patient.py",
]
