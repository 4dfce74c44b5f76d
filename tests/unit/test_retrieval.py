from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memory_plugin.retrieval import (
    Candidate,
    coverage,
    detail,
    fused_score,
    index_text,
    match_expression,
    query_terms,
    rank,
    reranked_score,
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
    share=st.floats(0, 1),
    named=st.booleans(),
    date_match=st.floats(0, 1),
    text=st.text(max_size=2000),
)
def test_scores_stay_in_unit_interval(
    cosine: float, bm25: float | None, share: float, named: bool, date_match: float, text: str
) -> None:
    fused = fused_score(cosine, bm25, named, date_match, detail(text))
    assert 0.0 <= fused <= 1.0
    assert 0.0 <= reranked_score(fused, share) <= 1.0


def test_rank_orders_best_first_and_breaks_ties_by_position() -> None:
    candidates = [Candidate(1, 0.2, None), Candidate(2, 0.9, None), Candidate(3, 0.2, None)]
    texts = {1: "a", 2: "b", 3: "c"}
    assert [p for p, _ in rank(candidates, texts, "zzz", 3, rerank=False)] == [2, 1, 3]
    assert len(rank(candidates, texts, "zzz", 2, rerank=True)) == 2


def test_rerank_prefers_memories_that_contain_the_query_terms() -> None:
    candidates = [Candidate(1, 0.50, None), Candidate(2, 0.48, None)]
    texts = {1: "something unrelated", 2: "the user drinks coffee"}
    assert rank(candidates, texts, "coffee drinks", 1, rerank=True)[0][0] == 2
    assert coverage(["coffee", "drinks"], "I drink coffee") == 1.0


def test_index_and_embedding_inputs_carry_speaker_and_context() -> None:
    from memory_plugin.retrieval import embedding_text, names_speaker

    assert index_text("To Rome", "Ann", "Bob: Where did you travel?") == "bob where did you travel ann to rome"
    assert embedding_text("To Rome", "Ann") == "Ann: To Rome"
    assert embedding_text("To Rome") == "To Rome"
    assert names_speaker(set(terms("Where did Ann Lee travel?")), "Ann Lee")
    assert not names_speaker(set(terms("Where did Ann travel?")), "Ann Lee")
    assert not names_speaker(set(terms("anything")), None)


def test_naming_the_speaker_lifts_the_score() -> None:
    plain, named = fused_score(0.5, 3.0), fused_score(0.5, 3.0, speaker_named=True)
    assert named > plain and named <= 1.0


def test_a_memory_from_the_period_the_query_names_ranks_higher() -> None:
    same_day, other_day = fused_score(0.5, 3.0, date_match=1.0), fused_score(0.5, 3.0, date_match=0.0)
    assert same_day > other_day and same_day <= 1.0


def test_detail_favours_sentences_over_bare_replies_but_never_creates_relevance() -> None:
    assert detail("") == 0.0 and detail("x" * 5000) == 1.0
    assert detail("Ok!") < detail("I adopted a puppy named Max last week.") < 1.0
    short, long = fused_score(0.5, 3.0, detail_share=detail("Ok!")), fused_score(0.5, 3.0, detail_share=1.0)
    assert long > short >= long / 2
    assert fused_score(-0.2, None, detail_share=1.0) == 0.0
