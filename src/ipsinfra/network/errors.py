"""Switch errors: the :class:`ipsinfra.errors.SwitchError` branch of the tree.

Each is also a builtin where one fits, so ``except ConnectionError`` works.
Messages name the switch and never carry a password.
"""

from __future__ import annotations

from ipsinfra.errors import SwitchError
from ipsinfra.hostkeys import HostKeyChanged, HostKeyUnknown

__all__ = [
    "SwitchAuthFailed",
    "SwitchCommandFailed",
    "SwitchHostKeyChanged",
    "SwitchHostKeyUnknown",
    "SwitchOutputError",
    "SwitchTimeout",
    "SwitchUnreachable",
    "UnknownPlatform",
]


class SwitchUnreachable(SwitchError, ConnectionError):
    """No TCP/SSH session could be opened to the switch's management address."""


class SwitchAuthFailed(SwitchError, PermissionError):
    """The switch refused our credentials."""


class SwitchTimeout(SwitchError, TimeoutError):
    """The switch did not answer in time (login, prompt or a command)."""


class UnknownPlatform(SwitchError, LookupError):
    """No driver/commands for the switch's ``platform`` (netmiko device type)."""


class SwitchOutputError(SwitchError, ValueError):
    """The switch's output cannot be parsed (garbage, an error message, a wrong template)."""


class SwitchCommandFailed(SwitchError):
    """The switch rejected a command (``% Invalid input``, a non-zero exit, ...)."""


class SwitchHostKeyUnknown(SwitchError, HostKeyUnknown):
    """The switch's host key is not pinned; the message has its fingerprint. Nothing was sent."""


class SwitchHostKeyChanged(SwitchError, HostKeyChanged):
    """The switch offered a key other than the pinned one. Nothing was sent."""
