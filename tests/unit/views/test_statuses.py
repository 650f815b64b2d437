"""portal.views.statuses: the one mapping from the services' domain results to HTTP."""

from __future__ import annotations

import pytest

from portal.services.chunked import ChunkRefused
from portal.services.drafts import DraftClosed
from portal.services.registration import LinkInvalid, RegistrationRefused
from portal.services.uploads import UploadRejected
from portal.storage.base import StorageError
from portal.verification.base import Problem
from portal.views.statuses import status_of

Reason = RegistrationRefused.Reason


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (ChunkRefused("size"), 400),
        (ChunkRefused("length"), 400),
        (ChunkRefused("gone"), 404),
        (ChunkRefused("offset", 10), 409),
        (ChunkRefused("sent"), 409),
        (ChunkRefused("too-large"), 413),
        (ChunkRefused("quota"), 413),
        (UploadRejected("too-large"), 413),
        (UploadRejected("quota"), 413),
        (UploadRejected("malformed"), 400),
        (UploadRejected("csrf"), 400),
        (Problem.NONE, 200),
        (Problem.INVALID, 400),
        (Problem.TOO_SOON, 429),
        (Problem.LIMIT, 429),
        (RegistrationRefused(Reason.INVALID_ADDRESS), 400),
        (RegistrationRefused(Reason.ADDRESS_LIMIT), 429),
        (RegistrationRefused(Reason.CLIENT_LIMIT), 429),
        (LinkInvalid(expired=True), 410),
        (LinkInvalid(expired=False), 404),
        (DraftClosed(sent=True), 409),
        (StorageError("down"), 503),
    ],
    ids=repr,
)
def test_each_domain_result_has_its_status(result, status):
    assert status_of(result) == status


def test_every_problem_and_registration_refusal_has_a_status():
    assert {status_of(problem) for problem in Problem} <= {200, 400, 429}
    assert {status_of(RegistrationRefused(reason)) for reason in Reason} <= {400, 429}


def test_a_result_without_a_mapping_is_a_programming_error():
    with pytest.raises(TypeError):
        status_of(ValueError("not a domain result"))
