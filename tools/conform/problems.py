"""A problem the checker found, and the catalogue of rules it checks."""

from dataclasses import dataclass

RULES: dict[str, str] = {
    "router-registered": "every router module's routes are reachable (included in main.py)",
    "handler-async": "handlers are `async def`",
    "handler-typed": "handler parameters and return are annotated, without `Any` or bare dict",
    "handler-response-model": "handlers declare `response_model=` (or a Response class)",
    "handler-status": "POST that creates answers 201, DELETE 204, GET/PUT/PATCH 200",
    "error-schema": "every 4xx/5xx response uses ErrorResponse; every operation documents 500",
    "error-documented": "every error a route can raise is listed in its responses",
    "list-bounds": "list endpoints take `limit` and `offset` with a minimum and a maximum",
    "list-sort": "each value of a list's `sort` parameter is a column of its model",
    "list-order": "a list's query is ordered, and its ORDER BY ends with the id",
    "list-index": "an index ends with each sort key then the id (after one FK or the subject)",
    "bare-except": "no bare `except:`",
    "blind-except": "no `except Exception` that swallows, outside the last-resort middleware",
    "env-read": "no os.environ / os.getenv outside core/config.py",
    "secret-literal": "no secret-looking literal outside DEV_ defaults in core/config.py",
    "docstring": "public modules, classes and functions have a docstring",
    "docstring-raises": "a public function that raises names each error under `Raises:`",
    "module-size": "modules are at most 500 lines",
    "integration-layout": "integrations live at integrations/<name>/<name>.py",
    "integration-setting": "what an integration reads from Settings is a documented field",
    "setting-documented": "every Settings field is in .env.example, with a comment above it",
}


@dataclass(frozen=True, order=True)
class Problem:
    """One broken rule at one place: printed as `file:line: rule: message (fix: hint)`."""

    file: str
    line: int
    rule: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message} (fix: {self.fix})"
