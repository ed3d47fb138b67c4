"""ipsinfra: a hosting provider's support rules as code.

See ``ipsinfra.naming`` (§8.5 names), ``ipsinfra.passwords`` (§4.8),
``ipsinfra.inventory`` (the fleet), ``ipsinfra.journal`` (§11.6) and
``ipsinfra.hypervisors`` (Proxmox VE and libvirt drivers).
"""

from __future__ import annotations

__version__ = "0.1.0"
