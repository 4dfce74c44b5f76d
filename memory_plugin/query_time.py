"""Periods of time a search query names, so memories from then can rank higher.

Questions to a memory often say when: "what did Ann cook on 9 November, 2022?", "where was John in August 2023?",
"what did we talk about yesterday?". Each memory has an ``event_time``; a memory whose event time falls in a period
the query names, or close to it, is more likely the one wanted (see the ``date`` signal of the score contract in
:mod:`memory_plugin.retrieval`).

Recognised, in English, case-insensitive: ``9 November 2022`` / ``November 9th, 2022`` / ``2022-11-09`` (a day),
``November 2022`` (a month), ``summer 2021`` (a season, northern hemisphere), a bare year ``2022``; and relative to
the time of the search: ``today``, ``yesterday``, ``this``/``last`` ``week``/``month``/``year``. Month names may be
abbreviated (``Nov 9, 2022``). A month with neither a day nor a year ("may") is not a date. Anything else is not
a period; a query without one ranks exactly as before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

# A memory this many days outside a named period still gets 1/e of the date signal.
PROXIMITY_DAYS = 7.0
# Memories further than this from every named period get no date signal, and are not fetched for it.
REACH_DAYS = 4 * PROXIMITY_DAYS
# A query names at most this many distinct periods: each costs a count and maybe a scan in a search, and a question
# rarely names more ("2023 " * 800 names one period, not 800).
MAX_PERIODS = 4

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11), "winter": (12, 2)}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PATTERNS = [
    ("day", re.compile(rf"\b{_YEAR}-(?P<month_number>\d\d)-{_DAY}\b")),
    ("day", re.compile(rf"\b{_DAY}(?:\s+of)?\s+{_MONTH},?\s+{_YEAR}\b")),
    ("day", re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b")),
    ("month", re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b")),
    ("season", re.compile(rf"\b(?P<season>{'|'.join(_SEASONS)})(?:\s+of)?\s+{_YEAR}\b")),
    ("year", re.compile(rf"\b{_YEAR}\b")),
    ("relative", re.compile(r"\b(?P<relative>today|yesterday|(?:this|last)\s+(?:week|month|year))\b")),
]


@dataclass(frozen=True)
class Period:
    """A closed span of time a query names, in UTC."""

    start: datetime
    end: datetime


def _days(first: date, last: date) -> Period:
    return Period(
        datetime.combine(first, time.min, timezone.utc),
        datetime.combine(last, time.max, timezone.utc),
    )


def _month(year: int, month: int) -> tuple[date, date]:
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, 1), following - timedelta(days=1)


def _relative(phrase: str, today: date) -> Period:
    unit = phrase.split()[-1]
    if phrase == "today":
        return _days(today, today)
    if phrase == "yesterday":
        return _days(today - timedelta(days=1), today - timedelta(days=1))
    back = phrase.startswith("last")
    if unit == "week":
        monday = today - timedelta(days=today.weekday() + (7 if back else 0))
        return _days(monday, monday + timedelta(days=6))
    if unit == "month":
        year, month = (today.year, today.month - 1) if back else (today.year, today.month)
        if month == 0:
            year, month = year - 1, 12
        return _days(*_month(year, month))
    year = today.year - 1 if back else today.year
    return _days(date(year, 1, 1), date(year, 12, 31))


def _period(kind: str, match: re.Match[str], today: date) -> Period | None:
    if kind == "relative":
        return _relative(" ".join(match["relative"].split()), today)
    year = int(match["year"])
    if kind == "year":
        return _days(date(year, 1, 1), date(year, 12, 31))
    if kind == "season":
        first, last = _SEASONS[match["season"]]
        # Winter runs from December of the year named into the next year's February.
        return _days(_month(year, first)[0], _month(year + (last < first), last)[1])
    month = int(match["month_number"]) if "month_number" in match.groupdict() else _MONTHS[match["month"]]
    if not 1 <= month <= 12:
        return None
    if kind == "month":
        return _days(*_month(year, month))
    try:
        day = date(year, month, int(match["day"]))
    except ValueError:  # 31 February and the like: not a date
        return None
    return _days(day, day)


def named_periods(query: str, now: datetime) -> list[Period]:
    """The distinct periods ``query`` names, most specific first, at most ``MAX_PERIODS``; relative phrases are
    taken relative to ``now``."""
    text = query.lower()
    today = now.astimezone(timezone.utc).date()
    periods: dict[Period, None] = {}  # ordered and distinct
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            period = _period(kind, match, today)
            if period is not None:
                periods[period] = None
                if len(periods) == MAX_PERIODS:
                    return list(periods)
        # What a more specific pattern matched is not read again ("9 November 2022" is not also "2022").
        text = pattern.sub(" ", text)
    return list(periods)


def proximity(event_time: float, periods: Sequence[Period]) -> float:
    """1 for an event time (a POSIX timestamp) inside a named period, decaying with the days outside the nearest
    one; 0 when no period is named or the nearest is more than ``REACH_DAYS`` away."""
    best = 0.0
    for period in periods:
        start, end = period.start.timestamp(), period.end.timestamp()
        outside = max(start - event_time, event_time - end, 0.0) / 86400
        if outside <= REACH_DAYS:
            best = max(best, math.exp(-outside / PROXIMITY_DAYS))
    return best


def reach(periods: Sequence[Period]) -> list[tuple[float, float]]:
    """The ``(start, end)`` POSIX timestamps within which :func:`proximity` is above 0."""
    margin = REACH_DAYS * 86400
    return [(p.start.timestamp() - margin, p.end.timestamp() + margin) for p in periods]
