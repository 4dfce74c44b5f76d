"""When an event happened: an ISO date from the LLM, or a relative phrase ("last Saturday", "yesterday",
"3 days ago", 昨天, 上週六) resolved against the time of the message. Pure functions, no I/O."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHINESE_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_DAYS = {"today": 0, "now": 0, "tonight": 0, "this morning": 0, "yesterday": -1, "day before yesterday": -2,
         "the day before yesterday": -2, "tomorrow": 1, "last week": -7, "今天": 0, "昨天": -1, "前天": -2,
         "明天": 1, "上週": -7, "上周": -7}  # fmt: skip
_AGO = re.compile(r"^(\d+|a|an|one|two|three|four|five|six|seven)\s+(day|week)s?\s+ago$")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _previous_weekday(reference: datetime, weekday: int) -> datetime:
    """The last such weekday strictly before the reference day ("last Saturday" said on a Saturday: a week ago)."""
    back = (reference.weekday() - weekday) % 7 or 7
    return _midnight(reference - timedelta(days=back))


def resolve_event_time(value: str | None, reference: datetime) -> datetime | None:
    """A datetime for ``value`` (aware, in ``reference``'s timezone), or ``None`` if it cannot be read.

    >>> from datetime import timezone
    >>> resolve_event_time("last Saturday", datetime(2026, 11, 18, 9, tzinfo=timezone.utc)).date().isoformat()
    '2026-11-14'
    """
    if not value:
        return None
    phrase = " ".join(value.strip().lower().rstrip(".").split())
    try:
        parsed = datetime.fromisoformat(phrase.replace("z", "+00:00") if phrase.endswith("z") else phrase)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=reference.tzinfo)
    except ValueError:
        pass
    for prefix in ("on ", "last ", "this past ", "past "):
        if phrase.startswith(prefix) and phrase[len(prefix) :] in WEEKDAYS:
            return _previous_weekday(reference, WEEKDAYS.index(phrase[len(prefix) :]))
    if phrase in WEEKDAYS:
        return _previous_weekday(reference, WEEKDAYS.index(phrase))
    if phrase in _DAYS:
        return _midnight(reference + timedelta(days=_DAYS[phrase]))
    match = _AGO.match(phrase)
    if match:
        count = int(match.group(1)) if match.group(1).isdigit() else _NUMBERS[match.group(1)]
        return _midnight(reference - timedelta(days=count * (7 if match.group(2) == "week" else 1)))
    chinese = re.fullmatch(r"(上)?(?:週|周|星期|禮拜|礼拜)([一二三四五六日天])", phrase)
    if chinese:
        weekday = _CHINESE_WEEKDAYS[chinese.group(2)]
        if chinese.group(1):  # 上週六: the Saturday of the previous week
            start_of_week = _midnight(reference - timedelta(days=reference.weekday()))
            return start_of_week - timedelta(days=7 - weekday)
        return _previous_weekday(reference, weekday)
    return None
