"""CSV reports: Shadowserver's daily reports and CSVs like them; each row is one case.

Shadowserver names its files ``YYYY-MM-DD-<report type>-<identifier>.csv``
(``2025-03-05-scan_dns-example-asn.csv``; documented in their report_schema
repository, ``report-filename.md``): the report type is the file's, unless a
row carries its own ``report_type``. The reported address is the row's ``ip``
(scan reports) or ``src_ip`` (event reports: the infected host, ``dst_ip`` is
the sinkhole). A ``report_type`` column (a combined export) gives each row its
own Shadowserver report type. AbuseHUB's CSV (the Dutch clearing house; columns
``report_type``, ``src_ip``, ``event_date``, ``event_time``, files named
``abusehubcsv-*.csv``, as AbuseIO's parser-abusehub reads them) is read in the
``abusehub`` scheme: its ``report_type`` is AbuseHUB's own name of the feed
("Shadowserver Botnet Drone", "Google Safe Browsing", "Hotmail FBL"), the time
is ``event_date`` + ``event_time``. A CSV of none of these is read in the ``csv``
scheme, its ``type``/``category`` column the type. A row's finer tag
(``infection``, ``tag``, ``type``...) goes into its evidence line.

Example::

    >>> text = "timestamp,ip,protocol,port,tag\\n2025-03-05 04:12:09,192.0.2.7,udp,53,openresolver\\n"
    >>> [(str(c.ip), c.report_type) for c in parse_csv("2025-03-05-scan_dns-x-asn.csv", text, 10)]
    [('192.0.2.7', 'scan_dns')]
"""

from __future__ import annotations

import csv
import io
import re

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase, ip_or_none, parse_time, short

__all__ = ["looks_like_csv", "parse_csv", "report_type_of"]

_SHADOWSERVER_NAME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})-([A-Za-z0-9_]{1,64})-[^/\\]{0,200}\.csv$", re.IGNORECASE
)
_IP_COLUMNS = ("ip", "src_ip", "source_ip", "ip_address", "source", "address")
_TIME_COLUMNS = ("timestamp", "time", "date", "first_seen", "last_seen")
# A row's own report type (multi-report CSVs), then type-like columns of generic CSVs.
_ROW_TYPE_COLUMNS = ("report_type",)
_GENERIC_TYPE_COLUMNS = ("type", "category", "classification", "feed")
_DETAIL_COLUMNS = (
    "infection",
    "family",
    "tag",
    "type",
    "category",
    "protocol",
    "port",
    "dst_port",
    "url",
    "http_url",
    "hostname",
)


def report_type_of(filename: str) -> str | None:
    """The Shadowserver report type a file name states, else None."""
    m = _SHADOWSERVER_NAME_RE.match(filename.rsplit("/", 1)[-1].strip())
    return m.group(2).lower() if m else None


def looks_like_csv(filename: str, content_type: str) -> bool:
    name = filename.lower()
    return content_type in ("text/csv", "application/csv") or name.endswith((".csv", ".csv.gz", ".csv.zip"))


def parse_csv(filename: str, text: str, max_rows: int) -> list[ReportCase]:
    """One case per row that names a usable IP, at most ``max_rows``; [] without an IP column.

    Raises:
        FormatRejected: a row the csv module refuses (a NUL, a field past its size limit).
    """
    file_type = report_type_of(filename)
    scheme = "shadowserver" if file_type else "csv"
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    cases: list[ReportCase] = []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        ip_col = next((header.index(c) for c in _IP_COLUMNS if c in header), None)
        if ip_col is None:
            return []  # a spreadsheet, not a report: no address column to read
        time_col = next((header.index(c) for c in _TIME_COLUMNS if c in header), None)
        type_col = next((header.index(c) for c in _ROW_TYPE_COLUMNS if c in header), None)
        abusehub = {"report_type", "src_ip", "event_date", "event_time"} <= set(header)
        if abusehub:
            scheme = "abusehub"  # AbuseHUB's own columns: its feed names are its vocabulary
            ip_col, time_col = header.index("src_ip"), header.index("event_date")
            clock_col: int | None = header.index("event_time")
        else:
            clock_col = None
        if type_col is not None and not abusehub:
            scheme = "shadowserver"  # a combined export: each row names its Shadowserver report
        if type_col is None and file_type is None:
            type_col = next((header.index(c) for c in _GENERIC_TYPE_COLUMNS if c in header), None)
        details = [(c, header.index(c)) for c in _DETAIL_COLUMNS if c in header]
        for row in reader:
            if len(cases) >= max_rows:
                break
            if len(row) <= ip_col:
                continue
            ip = ip_or_none(row[ip_col])
            if ip is None:
                continue
            row_type = (
                row[type_col].strip().lower()[:64] if type_col is not None and len(row) > type_col else ""
            )
            rtype = row_type or file_type
            stamp = row[time_col].strip() if time_col is not None and len(row) > time_col else ""
            if clock_col is not None and len(row) > clock_col and row[clock_col].strip():
                stamp = f"{stamp} {row[clock_col].strip()}"
            when = parse_time(stamp)
            extra = " ".join(f"{c}={row[i].strip()}" for c, i in details if len(row) > i and row[i].strip())
            cases.append(
                ReportCase(
                    ip=ip,
                    scheme=scheme,
                    report_type=rtype or None,
                    observed_at=when,
                    evidence=short(f"{filename.rsplit('/', 1)[-1]}: {rtype or '?'} {ip} {stamp} {extra}"),
                )
            )
    except csv.Error as exc:
        raise FormatRejected(
            f"attachment {filename!r}: value line {reader.line_num}: not readable CSV ({str(exc)[:80]})"
        ) from None
    return cases
