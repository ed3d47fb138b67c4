"""One exception tree for ipsinfra, rooted at :class:`IpsinfraError`.

Each error is also a builtin where one fits, so callers can catch
``ValueError`` or ``LookupError`` without knowing ipsinfra's names
(pyinfra's ``OperationValueError(OperationError, ValueError)`` habit).
Messages name the field and the value and never carry a secret.
"""

from __future__ import annotations


class IpsinfraError(Exception):
    """Root of every error ipsinfra raises on purpose."""


class InvalidInput(IpsinfraError, ValueError):
    """A value given to ipsinfra is malformed; the message names field and value."""


class InvalidName(InvalidInput):
    """A house name (§8.5) or its parts are malformed."""


class WeakPassword(InvalidInput):
    """A password breaks §4.8; the message lists why, never the password."""


class InventoryError(InvalidInput):
    """The inventory cannot be loaded: bad YAML, unknown group, duplicate name..."""


class SecretMissing(InvalidInput):
    """A secret reference cannot be read: its environment variable is unset, its file
    unreadable or empty. A configuration problem, not an outage: the message names
    who needs it (``owner``), the variable or file and the field, never a value."""

    def __init__(
        self, message: str, *, owner: str | None = None, field: str = "secret", reference: str = ""
    ) -> None:
        super().__init__(message)
        self.owner = owner
        self.field = field
        self.reference = reference

    def __reduce__(self) -> tuple[object, ...]:  # survives the audit's worker processes
        return (_secret_missing, (str(self), self.owner, self.field, self.reference))


def _secret_missing(message: str, owner: str | None, field: str, reference: str) -> SecretMissing:
    return SecretMissing(message, owner=owner, field=field, reference=reference)


class NotFound(IpsinfraError, LookupError):
    """Something named does not exist."""


class NodeNotFound(NotFound):
    """No node by that name."""


class VdsNotFound(NotFound):
    """No VDS by that name (or order) on the node."""


class Conflict(IpsinfraError):
    """The action would collide with what exists (a duplicate name, a lock held)."""


class AlreadyExists(Conflict):
    """An object with that name or id already exists."""


class Locked(Conflict):
    """Another operation holds the lock on this target."""


class TargetProofFailed(IpsinfraError):
    """A destructive action could not prove its target (§11.8); nothing was changed."""


class UnsupportedOperation(IpsinfraError, NotImplementedError):
    """The backend cannot do this (e.g. migrate on libvirt's test driver)."""


class HypervisorError(IpsinfraError):
    """A hypervisor backend failed; ``node`` names the node."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        self.node = node
        super().__init__(f"{node}: {message}" if node else message)


class HypervisorApiError(HypervisorError):
    """The backend API answered with an error."""


class NodeUnreachable(HypervisorError, ConnectionError):
    """The node (or its API) does not answer."""


class OperationTimeout(HypervisorError, TimeoutError):
    """A step did not finish before its deadline. A timeout raises, never returns None."""


class JournalError(IpsinfraError):
    """The journal cannot be written or read."""


class JournalTampered(JournalError):
    """The journal's hash chain does not verify: a line was edited or removed."""


class PlaybookError(IpsinfraError):
    """ansible-runner could not run the playbook at all."""


class SwitchError(IpsinfraError):
    """A switch could not be reached, logged into or parsed."""
