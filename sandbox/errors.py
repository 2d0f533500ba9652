"""RingCentral's error bodies, built in one place so every endpoint answers alike.

Real responses carry the legacy top-level ``errorCode``/``message`` beside ``errors[]``
(see the fact sheet, section 2.2); both are kept.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by handlers; the app turns it into the response."""

    def __init__(self, status: int, code: str, message: str, *, top_code: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.top_code = top_code or code
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        err = {"errorCode": self.code, "message": self.message, **self.extra}
        return {"errorCode": self.top_code, "message": self.message, "errors": [err], **self.extra}


def not_found(parameter: str, value: object) -> ApiError:
    return ApiError(404, "CMN-102", f"Resource for parameter [{parameter}] is not found",
                    parameterName=parameter, parameterValue=str(value))


def invalid_parameter(parameter: str, value: object, why: str = "") -> ApiError:
    message = f"Parameter [{parameter}] value is invalid" + (f" [{why}]" if why else "")
    return ApiError(400, "CMN-101", message, parameterName=parameter, parameterValue=str(value))


def rate_exceeded(headers: dict[str, str]) -> ApiError:
    return ApiError(429, "CMN-301", "Request rate exceeded", headers=headers)


class OAuthError(ApiError):
    """Token endpoint errors add RFC 6749 ``error``/``error_description`` fields."""

    def __init__(self, error: str, code: str, description: str, status: int = 400) -> None:
        super().__init__(status, code, description)
        self.error = error

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.message,
                "errors": [{"errorCode": self.code, "message": self.message}]}
