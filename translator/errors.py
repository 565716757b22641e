"""Domain errors. Each carries the HTTP status and a machine-readable code;
the API turns them into ``{"detail": ..., "code": ...}`` responses."""

from __future__ import annotations


class TranslatorError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TranslatorError):
    status_code = 422
    code = "invalid_input"


class NotFound(TranslatorError):
    status_code = 404
    code = "not_found"


class Unauthorized(TranslatorError):
    status_code = 401
    code = "unauthorized"


class Forbidden(TranslatorError):
    status_code = 403
    code = "forbidden"


class Conflict(TranslatorError):
    status_code = 409
    code = "conflict"


class InvalidUpload(TranslatorError):
    status_code = 400
    code = "invalid_upload"


class UnsupportedFileType(TranslatorError):
    status_code = 415
    code = "unsupported_file_type"


class FileTooLarge(TranslatorError):
    status_code = 413
    code = "file_too_large"


class UploadQuotaExceeded(TranslatorError):
    status_code = 413
    code = "upload_quota_exceeded"


class PaymentFailed(TranslatorError):
    status_code = 402
    code = "payment_failed"


class PromoCodeError(TranslatorError):
    status_code = 400
    code = "invalid_promo_code"
