"""Complaint formats: each module turns one message part into :class:`ReportCase` rows.

:mod:`ipsinfra.abuse.intake` detects the format and dispatches; the modules here
are pure (text in, cases out) and bounded by the limits they are given.

* :mod:`.arf`: RFC 5965 feedback reports (the source address from the Received chain)
* :mod:`.xarf`: X-ARF JSON (abusix schema v1-v3, xarf-spec v4)
* :mod:`.acns`: ACNS copyright notices (XML, no entity expansion)
* :mod:`.csvreport`: Shadowserver and similar CSV reports, one case per row
* :mod:`.archive`: plain, gzip and zip attachments, decompression bounded
* :mod:`.safebrowsing`: Google Safe Browsing alerts (XML, and the text/HTML mail form)
* :mod:`.cleanmx`: CleanMX site reports (pipe tables)
* :mod:`.netcraft`: Netcraft incident notices without an X-ARF part (attack type, Source IP table)
* :mod:`.projecthoneypot`: Project Honey Pot monitor notices (type letters H, S, D, C, R)
* :mod:`.spamhaus`: Spamhaus listing notices (the listing type SBL, CSS or DROP)
"""

from __future__ import annotations

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase

__all__ = ["FormatRejected", "ReportCase"]
