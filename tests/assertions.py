"""Assertions shared by the API tests: the contract's error body."""

from typing import Any

import httpx

ERROR_KEYS = {"code", "message", "details", "request_id"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert `response` is a contract error with `status` and `code`; return its body.

    The body has exactly the four keys, a one-sentence message, and the request id of the
    response's `X-Request-ID` header.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def error_locations(response: httpx.Response) -> list[list[str | int]]:
    """Return the `loc` of every problem in a `validation_error` body."""
    body = assert_error(response, 422, "validation_error")
    return [detail["loc"] for detail in body["details"]]
