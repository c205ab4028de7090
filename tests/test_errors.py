"""SPEC section 10: BusinessError and ErrorCode."""

from __future__ import annotations

import pickle

import pytest

from ohws import BusinessError, ErrorCode
from ohws._errors import parameter_error

SPEC_TABLE = [
    (200, "CONNECT_FAILED", "Websocket connect failed"),
    (201, "PERMISSION_DENIED", "Permission denied"),
    (401, "PARAMETER_ERROR", "Parameter error"),
    (2302001, "URL_ERROR", "Websocket url error"),
    (2302002, "CERT_FILE_NOT_EXIST", "Websocket certificate file does not exist"),
    (2302003, "CONNECTION_ALREADY_EXISTS", "Websocket connection already exists"),
    (2302004, "CANNOT_LISTEN_ON_NIC", "Can't listen on the given NIC"),
    (2302005, "CANNOT_LISTEN_ON_PORT", "Can't listen on the given Port"),
    (2302006, "CONNECTION_NOT_EXIST", "Websocket connection does not exist"),
    (2302007, "PORT_OCCUPIED", "Websocket port already occupied"),
    (2302998, "DOMAIN_NOT_ALLOWED", "It is not allowed to access this domain"),
    (2302999, "UNKNOWN_ERROR", "Websocket other unknown error"),
]


@pytest.mark.parametrize(("code", "name", "message"), SPEC_TABLE)
def test_error_code_table(code: int, name: str, message: str) -> None:
    """Every code of the SPEC table has its name and its standard message."""
    assert ErrorCode[name] == code
    err = BusinessError.of(ErrorCode(code))
    assert err.code == code
    assert err.message == message
    assert err.data is None


def test_error_code_enum_is_exactly_the_table() -> None:
    """ErrorCode has no code the SPEC does not list."""
    assert sorted(int(c) for c in ErrorCode) == sorted(row[0] for row in SPEC_TABLE)


def test_message_continues_with_cause_after_colon() -> None:
    """A specific cause follows the standard message after a colon."""
    err = BusinessError.of(ErrorCode.URL_ERROR, "scheme 'http' is not ws or wss")
    assert err.message == "Websocket url error: scheme 'http' is not ws or wss"
    assert str(err) == "[2302001] Websocket url error: scheme 'http' is not ws or wss"


def test_business_error_fields_repr_and_pickle() -> None:
    """BusinessError is an Exception with code, message, data; it pickles and reprs."""
    err = BusinessError.of(ErrorCode.CONNECT_FAILED, "refused", data="0")
    assert isinstance(err, Exception)
    assert (err.code, err.data) == (200, "0")
    assert "data='0'" in repr(err)
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.code, clone.message, clone.data) == (err.code, err.message, err.data)


def test_parameter_error_names_the_problem() -> None:
    """parameter_error gives a 401 whose message says what was wrong."""
    err = parameter_error("options.header must be a dict")
    assert err.code == 401
    assert err.message == "Parameter error: options.header must be a dict"
