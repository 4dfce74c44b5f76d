from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_plugin.query_time import MAX_PERIODS, PROXIMITY_DAYS, REACH_DAYS, Period, named_periods, proximity, reach

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)  # a Saturday


def spans(query: str) -> list[tuple[str, str]]:
    return [(p.start.date().isoformat(), p.end.date().isoformat()) for p in named_periods(query, NOW)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What did Nate cook on 9 November, 2022?", [("2022-11-09", "2022-11-09")]),
        ("What did Nate cook on November 9th, 2022?", [("2022-11-09", "2022-11-09")]),
        ("What did Nate cook on Nov. 9 2022?", [("2022-11-09", "2022-11-09")]),
        ("the 9th of November 2022", [("2022-11-09", "2022-11-09")]),
        ("notes from 2022-11-09", [("2022-11-09", "2022-11-09")]),
        ("Where did Joanna travel in July 2022?", [("2022-07-01", "2022-07-31")]),
        ("anything in February 2024", [("2024-02-01", "2024-02-29")]),
        ("What state did Joanna visit in summer 2021?", [("2021-06-01", "2021-08-31")]),
        ("winter 2022", [("2022-12-01", "2023-02-28")]),
        ("How often did she go to the beach in 2023?", [("2023-01-01", "2023-12-31")]),
        ("between 1 May 2023 and June 2023", [("2023-05-01", "2023-05-01"), ("2023-06-01", "2023-06-30")]),
    ],
)
def test_absolute_dates_are_read_most_specific_first(query: str, expected: list[tuple[str, str]]) -> None:
    assert spans(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what did we talk about today", ("2026-11-21", "2026-11-21")),
        ("What did I eat yesterday?", ("2026-11-20", "2026-11-20")),
        ("plans for this week", ("2026-11-16", "2026-11-22")),
        ("what happened last week", ("2026-11-09", "2026-11-15")),
        ("last month", ("2026-10-01", "2026-10-31")),
        ("this year", ("2026-01-01", "2026-12-31")),
        ("last year", ("2025-01-01", "2025-12-31")),
    ],
)
def test_relative_phrases_are_relative_to_the_search_time(query: str, expected: tuple[str, str]) -> None:
    assert spans(query) == [expected]


def test_last_month_in_january_is_the_previous_december() -> None:
    january = datetime(2026, 1, 10, tzinfo=timezone.utc)
    (period,) = named_periods("last month", january)
    assert (period.start.date(), period.end.date()) == (date(2025, 12, 1), date(2025, 12, 31))


@pytest.mark.parametrize(
    "query",
    ["May I ask what you like?", "what did I say", "the 31 February, 2023 party", "room 12345", "2023-13-01", ""],
)
def test_words_and_numbers_that_are_not_dates_name_no_period(query: str) -> None:
    assert named_periods(query, NOW) == []


def test_a_period_named_many_times_is_one_period() -> None:
    assert spans("2023 " * 800) == [("2023-01-01", "2023-12-31")]  # 4,000 characters: one period, not 800


def test_a_query_names_at_most_a_few_periods_most_specific_first() -> None:
    query = " ".join(str(year) for year in range(1990, 2030)) + " on 9 May, 2023 and yesterday"
    assert len(spans(query)) == MAX_PERIODS == 4
    assert spans(query)[:2] == [("2023-05-09", "2023-05-09"), ("1990-01-01", "1990-12-31")]


@given(st.text(max_size=200))
def test_any_text_parses_without_error(query: str) -> None:
    periods = named_periods(query, NOW)
    assert len(periods) == len(set(periods)) <= MAX_PERIODS
    for period in periods:
        assert period.start <= period.end


def test_proximity_is_one_inside_and_decays_outside_until_the_reach() -> None:
    (day,) = named_periods("on 3 May, 2023", NOW)
    inside = datetime(2023, 5, 3, 18, tzinfo=timezone.utc).timestamp()
    week_later = day.end.timestamp() + PROXIMITY_DAYS * 86400
    assert proximity(inside, [day]) == 1.0
    assert proximity(week_later, [day]) == pytest.approx(0.3679, abs=1e-3)
    assert proximity(day.start.timestamp() - (REACH_DAYS + 1) * 86400, [day]) == 0.0
    assert proximity(inside, []) == 0.0
    (start, end) = reach([day])[0]
    assert start < day.start.timestamp() and end > day.end.timestamp()


def test_proximity_takes_the_nearest_period() -> None:
    periods = [
        Period(datetime(2023, 1, 1, tzinfo=timezone.utc), datetime(2023, 1, 2, tzinfo=timezone.utc)),
        Period(datetime(2023, 6, 1, tzinfo=timezone.utc), datetime(2023, 6, 2, tzinfo=timezone.utc)),
    ]
    assert proximity(datetime(2023, 6, 1, 12, tzinfo=timezone.utc).timestamp(), periods) == 1.0
