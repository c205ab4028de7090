"""Process-wide network policy (SPEC section 9): errors 201 and 2302998.

Pure: a small piece of shared state behind a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import BusinessError, ErrorCode, parameter_error

__all__ = ["check_domain", "check_permission", "setNetworkPolicy"]


@dataclass(frozen=True, slots=True)
class _Policy:
    allow_internet: bool = True
    allowed_domains: tuple[str, ...] | None = None


_policy_lock = threading.Lock()
_policy = _Policy()


def setNetworkPolicy(allowInternet: bool = True, allowedDomains: Iterable[str] | None = None) -> None:
    """Set what connections may do in this process (extension).

    ``allowInternet=False`` makes ``connect``/``send``/``close`` fail with 201.
    ``allowedDomains`` (host names, ``*.suffix`` wildcards) makes ``connect`` to any
    other host fail with 2302998. The defaults allow everything. Raises 401 for bad types.
    """
    global _policy
    if not isinstance(allowInternet, bool):
        raise parameter_error("allowInternet must be a bool")
    domains: tuple[str, ...] | None = None
    if allowedDomains is not None:
        if isinstance(allowedDomains, str):
            raise parameter_error("allowedDomains must be a list of str, not a str")
        domains = tuple(allowedDomains)
        if not all(isinstance(d, str) and d for d in domains):
            raise parameter_error("allowedDomains must contain only non-empty str")
        domains = tuple(d.lower().strip("[]") for d in domains)
    with _policy_lock:
        _policy = _Policy(allowInternet, domains)


def check_permission() -> None:
    """Raise 201 when the policy forbids network use."""
    if not _policy.allow_internet:
        raise BusinessError.of(ErrorCode.PERMISSION_DENIED, "network access is disabled by setNetworkPolicy")


def check_domain(host: str) -> None:
    """Raise 2302998 when ``host`` is outside the allowed domains."""
    domains = _policy.allowed_domains
    if domains is None:
        return
    host = host.lower()
    for domain in domains:
        if domain.startswith("*."):
            if host.endswith(domain[1:]):
                return
        elif host == domain:
            return
    raise BusinessError.of(ErrorCode.DOMAIN_NOT_ALLOWED, f"{host!r} is not in allowedDomains")
