from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memory_plugin.retrieval import (
    Candidate,
    calibrated,
    detail,
    evidence,
    index_text,
    match_expression,
    query_terms,
    rank,
    terms,
)


def test_cjk_runs_become_bigrams_so_chinese_queries_share_terms() -> None:
    assert terms("我喜歡喝咖啡") == ["我喜", "喜歡", "歡喝", "喝咖", "咖啡"]
    assert set(query_terms("使用者喜歡什麼飲品")) & set(terms("我喜歡喝咖啡")) == {"喜歡"}


def test_mixed_language_text_keeps_latin_words() -> None:
    assert terms("I like 咖啡 and Tea!") == ["i", "like", "咖啡", "and", "tea"]


def test_stop_words_are_dropped_unless_nothing_else_is_left() -> None:
    assert query_terms("what does the user drink?") == ["user", "drink"]
    assert query_terms("what is it") == ["what", "is", "it"]


@given(st.text(max_size=300))
def test_match_expression_never_carries_query_syntax(query: str) -> None:
    expression = match_expression(query_terms(query))
    if expression is None:
        return
    for part in expression.split(" OR "):
        assert part.startswith('"') and part.endswith('"')
        assert '"' not in part[1:-1] and part[1:-1].replace("_", "").isalnum()


def test_hostile_fts_syntax_is_reduced_to_words() -> None:
    assert match_expression(query_terms('"NEAR( x* AND -y ^z OR 1=1 --')) == '"near" "x" "y" "z" "1"'.replace(
        '" "', '" OR "'
    )


def test_index_text_is_space_joined_terms() -> None:
    assert index_text("Hello, World") == "hello world"


@given(
    cosine=st.floats(-1, 1),
    bm25=st.one_of(st.none(), st.floats(0, 1e6)),
    named=st.booleans(),
    date_match=st.floats(0, 1),
    by_assistant=st.booleans(),
    text=st.text(max_size=2000),
    behind=st.floats(0, 50),
)
def test_scores_stay_in_unit_interval(
    cosine: float, bm25: float | None, named: bool, date_match: float, by_assistant: bool, text: str, behind: float
) -> None:
    value = evidence(Candidate(1, cosine, bm25, named, date_match, by_assistant), text)
    assert 0.0 <= calibrated(value, None) <= 1.0
    assert 0.0 <= calibrated(value, value + behind) <= 1.0


def test_rank_orders_best_first_and_breaks_ties_by_position() -> None:
    candidates = [Candidate(1, 0.2, None), Candidate(2, 0.9, None), Candidate(3, 0.2, None)]
    texts = {1: "a", 2: "b", 3: "c"}
    assert [p for p, _ in rank(candidates, texts, 3, rerank=False)] == [2, 1, 3]
    assert [p for p, _ in rank(candidates, texts, 2, rerank=True)] == [2, 1]


def test_scores_fall_with_rank_with_or_without_rerank() -> None:
    candidates = [Candidate(p, cosine, None) for p, cosine in enumerate([0.7, 0.5, 0.3, 0.1])]
    texts = dict.fromkeys(range(4), "I adopted a puppy named Max last week.")
    for rerank in (True, False):
        scores = [score for _, score in rank(candidates, texts, 4, rerank)]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4


def test_a_turn_is_returned_once_by_its_best_memory() -> None:
    candidates = [
        Candidate(1, 0.4, None, turn="msg_1"),
        Candidate(2, 0.8, None, turn="msg_1"),
        Candidate(3, 0.6, None, turn="msg_2"),
        Candidate(4, 0.5, None),
        Candidate(5, 0.5, None),
    ]
    texts = dict.fromkeys(range(1, 6), "I have a severe nut allergy.")
    assert [p for p, _ in rank(candidates, texts, 10, rerank=True)] == [2, 3, 4, 5]


def test_what_the_user_said_outranks_what_the_assistant_said() -> None:
    text = "Thai curries often use peanuts."
    user, assistant = Candidate(1, 0.5, 3.0), Candidate(2, 0.5, 3.0, by_assistant=True)
    assert evidence(user, text) > evidence(assistant, text)


def test_a_shared_word_does_not_drown_a_closer_meaning() -> None:
    # "What Thai dishes should I try?": the allergy shares no word; an assistant-free chat line shares "Thai".
    allergy = Candidate(1, 0.45, None)
    chat = Candidate(2, 0.2, 4.0)
    texts = {1: "I have a severe nut allergy.", 2: "We talked about Thai boxing."}
    assert [p for p, _ in rank([chat, allergy], texts, 2, rerank=True)] == [1, 2]


def test_index_and_embedding_inputs_carry_speaker_and_context() -> None:
    from memory_plugin.retrieval import embedding_text, names_speaker

    assert index_text("To Rome", "Ann", "Bob: Where did you travel?") == "bob where did you travel ann to rome"
    assert embedding_text("To Rome", "Ann") == "Ann: To Rome"
    assert embedding_text("To Rome") == "To Rome"
    assert names_speaker(set(terms("Where did Ann Lee travel?")), "Ann Lee")
    assert not names_speaker(set(terms("Where did Ann travel?")), "Ann Lee")
    assert not names_speaker(set(terms("anything")), None)


def test_naming_the_speaker_or_the_period_lifts_the_evidence() -> None:
    text = "I went hiking."
    plain = evidence(Candidate(1, 0.5, 3.0), text)
    assert evidence(Candidate(1, 0.5, 3.0, speaker_named=True), text) > plain
    assert evidence(Candidate(1, 0.5, 3.0, date_match=1.0), text) > plain


def test_detail_favours_sentences_over_bare_replies() -> None:
    assert detail("") == 0.0 and detail("x" * 5000) == 1.0
    assert detail("Ok!") < detail("I adopted a puppy named Max last week.") < 1.0
    assert evidence(Candidate(1, 0.5, 3.0), "Ok!") < evidence(Candidate(1, 0.5, 3.0), "I adopted a puppy named Max.")
