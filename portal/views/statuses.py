"""The one mapping from what the services answer to HTTP statuses.

Services speak in domain results (a refused chunk's reason, a verification problem, a
refused registration); every view asks :func:`status_of` what such a result is in HTTP, so
the same refusal is the same status on every page and in every JSON answer.
"""

from __future__ import annotations

from portal.i18n import L_
from portal.services.chunked import ChunkRefused
from portal.services.drafts import DraftClosed
from portal.services.file_policy import FileRefused
from portal.services.registration import LinkInvalid, RegistrationRefused
from portal.services.uploads import UploadRejected
from portal.storage.base import StorageError
from portal.verification.base import Problem

#: The database (or its disk) cannot take a write just now: the page again, as typed, with
#: this, and 503.
CANNOT_STORE = L_(
    "What you entered cannot be saved just now. Nothing has been lost: please try again in a while."
)

#: Why an upload (a form's files or a chunk) was refused; any other reason is a bad request.
UPLOAD_REASONS = {
    "file-type": 422,
    "too-large": 413,
    "quota": 413,
    "gone": 404,
    "offset": 409,
    "sent": 409,
}
PROBLEMS = {
    Problem.NONE: 200,
    Problem.INVALID: 400,
    Problem.TOO_SOON: 429,
    Problem.LIMIT: 429,
}
REGISTRATION = {
    RegistrationRefused.Reason.INVALID_ADDRESS: 400,
    RegistrationRefused.Reason.ADDRESS_LIMIT: 429,
    RegistrationRefused.Reason.CLIENT_LIMIT: 429,
}


def status_of(result: object) -> int:
    """The HTTP status of a service's domain result."""
    match result:
        case Problem():
            return PROBLEMS[result]
        case ChunkRefused() | UploadRejected():
            return UPLOAD_REASONS.get(result.reason, 400)
        case FileRefused():
            return UPLOAD_REASONS["file-type"]  # the body is readable; one file is refused
        case RegistrationRefused():
            return REGISTRATION[result.reason]
        case LinkInvalid():
            return 410 if result.expired else 404
        case DraftClosed():
            return 409  # sent or cancelled meanwhile: the request conflicts with its state
        case StorageError():
            return 503  # storage is down: nothing was kept, try again later
    raise TypeError(f"no HTTP status for {result!r}")
