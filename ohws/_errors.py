"""Error codes and ``BusinessError``, as the ArkTS module reports them (SPEC section 10).

Pure: no I/O, no threads.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = ["BusinessError", "ErrorCode"]


class ErrorCode(IntEnum):
    """The error codes of ``@ohos.net.webSocket``."""

    CONNECT_FAILED = 200
    PERMISSION_DENIED = 201
    PARAMETER_ERROR = 401
    URL_ERROR = 2302001
    CERT_FILE_NOT_EXIST = 2302002
    CONNECTION_ALREADY_EXISTS = 2302003
    CANNOT_LISTEN_ON_NIC = 2302004
    CANNOT_LISTEN_ON_PORT = 2302005
    CONNECTION_NOT_EXIST = 2302006
    PORT_OCCUPIED = 2302007
    DOMAIN_NOT_ALLOWED = 2302998
    UNKNOWN_ERROR = 2302999


_MESSAGES = {
    ErrorCode.CONNECT_FAILED: "Websocket connect failed",
    ErrorCode.PERMISSION_DENIED: "Permission denied",
    ErrorCode.PARAMETER_ERROR: "Parameter error",
    ErrorCode.URL_ERROR: "Websocket url error",
    ErrorCode.CERT_FILE_NOT_EXIST: "Websocket certificate file does not exist",
    ErrorCode.CONNECTION_ALREADY_EXISTS: "Websocket connection already exists",
    ErrorCode.CANNOT_LISTEN_ON_NIC: "Can't listen on the given NIC",
    ErrorCode.CANNOT_LISTEN_ON_PORT: "Can't listen on the given Port",
    ErrorCode.CONNECTION_NOT_EXIST: "Websocket connection does not exist",
    ErrorCode.PORT_OCCUPIED: "Websocket port already occupied",
    ErrorCode.DOMAIN_NOT_ALLOWED: "It is not allowed to access this domain",
    ErrorCode.UNKNOWN_ERROR: "Websocket other unknown error",
}


class BusinessError(Exception):
    """An ohws failure: ``code`` (an :class:`ErrorCode` value), ``message`` and ``data``.

    ``str(err)`` is ``"[code] message"``. ``data`` is set on code 200 errors: the HTTP
    status of the handshake response as a string, or ``"0"`` when there was none.
    """

    code: int
    message: str
    data: str | None

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def of(cls, code: ErrorCode, detail: str = "", data: str | None = None) -> BusinessError:
        """Build the error for ``code`` with the standard message and an optional cause."""
        message = _MESSAGES[code]
        if detail:
            message = f"{message}: {detail}"
        return cls(int(code), message, data)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        extra = "" if self.data is None else f", data={self.data!r}"
        return f"BusinessError({self.code}, {self.message!r}{extra})"

    def __reduce__(self) -> tuple[type[BusinessError], tuple[int, str, str | None]]:
        return (type(self), (self.code, self.message, self.data))


def parameter_error(detail: str) -> BusinessError:
    """A 401 whose message names the offending argument or option key."""
    return BusinessError.of(ErrorCode.PARAMETER_ERROR, detail)


class _Missing:
    """The default of a required argument: leaving it out is a 401 naming it, not a TypeError."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


#: stands for an argument the caller left out
MISSING: Any = _Missing()


def unknown_error(detail: str) -> BusinessError:
    """A 2302999 whose message says what went wrong."""
    return BusinessError.of(ErrorCode.UNKNOWN_ERROR, detail)
