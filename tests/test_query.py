"""The portable query: parsing, local matching on records, and every API translation."""

from __future__ import annotations

import pytest

from harvester.errors import HarvesterError, QuerySyntaxError
from harvester.query.match import FIELD_WEIGHTS, Hit, Match, index_record
from harvester.query.syntax import MAX_NESTING, And, Not, Or, Query, Term, parse_query
from harvester.query.translate import (
    TRANSLATORS,
    to_arxiv,
    to_crossref,
    to_europepmc,
    to_openalex,
    to_pubmed,
    to_semanticscholar,
)
from harvester.records import OtherAbstract, Record, Section

TOPIC = (
    '("self-help group*" OR "support group*" OR "peer support" OR forum*) '
    "AND (online OR internet) AND (anxiety OR depress*)"
)
NOT_QUERY = '(anxiety OR depress*) AND online NOT (adolescen* OR "young people")'

# The three records below are copied from real PubMed records in
# ../shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml
# (title, abstract text, MeSH headings and author keywords), abridged where marked "…".

COPING = Record(  # PMID 36309197
    source="pubmed",
    title="How do others cope? Extracting coping strategies for adverse drug events from "
    "social media.",
    abstract="Patients advise their peers on how to cope with their illness in daily life on "
    "online support groups. To date, no efforts have been made to automatically extract "
    "recommended coping strategies from online patient discussion groups. … We evaluated our "
    "methods on the discussion forum from the Facebook group of the worldwide patient support "
    "organization 'GIST support international' (GSI); GIST support international donated the "
    "data to us. …",
    keywords=(
        "Humans",
        "Social Media",
        "Gastrointestinal Stromal Tumors",
        "Drug-Related Side Effects and Adverse Reactions",
        "Natural Language Processing",
        "Adverse drug reaction",
        "Coping strategies",
        "GIST",
        "Machine learning",
        "Natural language processing",
        "Patient forum",
        "Social media mining",
    ),
)

PPD = Record(  # PMID 36341842
    source="pubmed",
    title="Comparison of relative areas of interest between major depression disorder and "
    "postpartum depression.",
    abstract_sections=(
        Section(
            "INTRODUCTION",
            "Postpartum depression (PPD) is defined as a major depressive disorder (MDD) "
            "beginning after childbirth. …",
        ),
        Section(
            "METHODS",
            "In November 2021, we performed an extraction and textual computational analysis "
            "of associated terms for PPD and MDD, using the biomedical database PubMed. …",
        ),
    ),
    keywords=(
        "Major Depressive Disorder",
        "Depression, Postpartum",
        "Mood Disorders",
        "Natural language processing",
        "Scientific representations",
        "Text-mining",
    ),
)

PTSD = Record(  # PMID 36509356
    source="pubmed",
    title="Identifying women with postdelivery posttraumatic stress disorder using natural "
    "language processing of personal childbirth narratives.",
    abstract="BACKGROUND: … Although women are routinely screened for postpartum depression in "
    "the United States, there is no recommended protocol to inform the identification of "
    "women who are likely to experience childbirth-related posttraumatic stress disorder. …",
    keywords=("postpartum", "postpartum depression", "trauma"),
)


def hits_of(query: str, record: Record) -> tuple[Hit, ...] | None:
    match = parse_query(query).match(record)
    return None if match is None else match.hits


# --- parsing ---------------------------------------------------------------------------------


def test_topic_query_tree() -> None:
    q = parse_query(TOPIC)
    assert q.text == TOPIC and str(q) == TOPIC
    assert q.root == And(
        (
            Or(
                (
                    Term("self-help group", phrase=True, truncated=True),
                    Term("support group", phrase=True, truncated=True),
                    Term("peer support", phrase=True),
                    Term("forum", truncated=True),
                )
            ),
            Or((Term("online"), Term("internet"))),
            Or((Term("anxiety"), Term("depress", truncated=True))),
        )
    )
    assert [str(t) for t in q.terms()] == [
        '"self-help group*"',
        '"support group*"',
        '"peer support"',
        "forum*",
        "online",
        "internet",
        "anxiety",
        "depress*",
    ]


@pytest.mark.parametrize(
    ("text", "root"),
    [
        ("a OR b AND c", Or((Term("a"), And((Term("b"), Term("c")))))),
        ("a b OR c", Or((And((Term("a"), Term("b"))), Term("c")))),  # implicit AND binds tighter
        ("a OR b c NOT d", Or((Term("a"), And((Term("b"), Term("c"), Not(Term("d"))))))),
        ("(a OR b) c", And((Or((Term("a"), Term("b"))), Term("c")))),
        ("a AND (b AND c)", And((Term("a"), Term("b"), Term("c")))),  # flattened
        ("a OR (b OR c) OR d", Or((Term("a"), Term("b"), Term("c"), Term("d")))),
        ("NOT b a", And((Not(Term("b")), Term("a")))),
        ("a AND NOT (b OR c)", And((Term("a"), Not(Or((Term("b"), Term("c"))))))),
        ("a NOT (b NOT c)", And((Term("a"), Not(And((Term("b"), Not(Term("c")))))))),
        ("((anxiety))", Term("anxiety")),
        ("self-help", Term("self-help")),
        ("Parkinson's", Term("Parkinson's")),
        ("covid-19", Term("covid-19")),
        ("ångest depresión", And((Term("ångest"), Term("depresión")))),
        ('"peer  support"', Term("peer support", phrase=True)),  # whitespace collapsed
        ('"or"', Term("or", phrase=True)),  # a quoted operator word is a word
        ("anxiety(online)", And((Term("anxiety"), Term("online")))),
        ("self-help*", Term("self-help", truncated=True)),
        ('"self-help group*"', Term("self-help group", phrase=True, truncated=True)),
    ],
)
def test_parse_tree(text: str, root: object) -> None:
    assert parse_query(text).root == root


def test_terms_and_positive_terms() -> None:
    q = parse_query("anxiety NOT child* depress* anxiety")
    assert q.terms() == (
        Term("anxiety"),
        Term("child", truncated=True),
        Term("depress", truncated=True),
    )
    assert q.positive_terms() == (Term("anxiety"), Term("depress", truncated=True))


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "empty query"),
        ("   ", 0, "empty query"),
        ("(anxiety OR depression", 0, "unclosed '('"),
        ("a AND ((b OR c) d", 6, "unclosed '('"),
        ("anxiety OR depression)", 21, "unmatched ')'"),
        ("(a) b) c", 5, "unmatched ')'"),
        ('anxiety AND "peer support', 12, "unterminated quote"),
        ("anxiety AND", 8, "AND needs a term after it"),
        ("anxiety OR", 8, "OR needs a term after it"),
        ("OR depression", 0, "OR needs a term before it"),
        ("AND AND", 0, "AND needs a term before it"),
        ("a AND OR b", 2, "AND needs a term after it"),
        ("(a OR) b", 3, "OR needs a term after it"),
        ("a (AND b)", 3, "AND needs a term before it"),
        ("anxiety NOT", 8, "NOT needs a term after it"),
        ("()", 0, "empty parentheses"),
        ("a AND ( )", 6, "empty parentheses"),
        ('""', 0, "empty phrase"),
        ('a " "', 2, "empty phrase"),
        ("de*press", 2, "'*' may only end a term (or the last word of a phrase)"),
        ('"self* help"', 5, "'*' may only end a term (or the last word of a phrase)"),
        ("a AND *", 6, "'*' must follow a word stem"),
        (
            "online a*",
            7,
            "truncation stem 'a' is too short (at least 4 letters, or it matches too much)",
        ),
        (
            "dep*",
            0,
            "truncation stem 'dep' is too short (at least 4 letters, or it matches too much)",
        ),
        (
            '"self-help gr*"',
            11,
            "truncation stem 'gr' is too short (at least 4 letters, or it matches too much)",
        ),
        (
            "self-h*",
            5,
            "truncation stem 'h' is too short (at least 4 letters, or it matches too much)",
        ),
        ("patients'*", 9, "'*' must follow a letter or digit"),
        ("a : b", 2, "unexpected character ':'"),
        ("anxiety, depression", 7, "unexpected character ','"),
        ("“peer support”", 0, "unexpected character '“' (use straight double quotes)"),
        ('"heart, failure"', 6, "unexpected character ',' in a phrase"),
        ("-anxiety", 0, "a term cannot start with '-' (use NOT to exclude a term)"),
        ("self- help", 4, "a term cannot end with '-'"),
        ("'tis", 0, "a term must start with a letter or digit"),
        (
            "anxiety or depression",
            8,
            "'or' is not an operator: write OR for the operator, or \"or\" to search for the word",
        ),
        (
            "Not anxiety",
            0,
            "'Not' is not an operator: write NOT for the operator, or \"Not\" "
            "to search for the word",
        ),
    ],
)
def test_syntax_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert (caught.value.position, caught.value.reason) == (position, reason)
    assert caught.value.query == text
    assert isinstance(caught.value, HarvesterError)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("NOT anxiety", 0),  # nothing to exclude from
        ("anxiety OR NOT depression", 11),  # an OR branch would mean "almost everything"
        ("(NOT a) OR b", 1),
        ("NOT a NOT b", 0),  # two exclusions, nothing positive
        ("NOT NOT anxiety", 0),
        ("anxiety NOT NOT depression", 12),
    ],
)
def test_not_must_exclude_from_a_positive_operand(text: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError, match="NOT needs a positive term beside it") as caught:
        parse_query(text)
    assert caught.value.position == position


def test_error_message_points_at_the_problem() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("anxiety AND")
    assert str(caught.value) == "AND needs a term after it at position 8: anxiety ⟨here⟩AND"


def test_nesting_is_limited_with_a_short_message() -> None:
    """A pasted wall of parentheses (or of NOTs) is a syntax error at the first level past
    MAX_NESTING, not a RecursionError; the message shows the query only around that point."""
    deep = "(" * 50_000 + "anxiety" + ")" * 50_000
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(deep)
    assert caught.value.position == MAX_NESTING
    assert caught.value.reason == f"nesting deeper than {MAX_NESTING} levels of parentheses and NOT"
    assert len(str(caught.value)) < 300 and "…" + "(" * 60 + "⟨here⟩" in str(caught.value)
    nots = "anxiety " + "NOT " * 50_000 + "depression"
    with pytest.raises(QuerySyntaxError, match="nesting deeper than") as caught:
        parse_query(nots)
    assert caught.value.position == len("anxiety ") + 4 * MAX_NESTING


def test_the_deepest_allowed_query_parses_matches_and_translates() -> None:
    text = "anxiety"
    for level in range(MAX_NESTING):  # alternating, so the tree nests as deep as the text
        text = f"(word{level} {'OR' if level % 2 else 'AND'} {text})"
    query = parse_query(text)
    record = Record(source="pubmed", title="word99 word97 anxiety")
    assert query.match(record) is not None
    for name, translate in TRANSLATORS.items():
        translated = translate(query)  # bioRxiv's is empty: it cannot search
        assert "word0" in translated or name.endswith("rxiv"), name
    with pytest.raises(QuerySyntaxError, match="nesting deeper than"):
        parse_query(f"(extra OR {text})")


def test_query_is_a_frozen_value() -> None:
    assert parse_query("a OR b") == parse_query("a OR b")
    assert hash(parse_query("a OR b")) == hash(parse_query("a OR b"))
    with pytest.raises(AttributeError):
        parse_query("a").text = "b"  # type: ignore[misc]


# --- local matching --------------------------------------------------------------------------


def test_real_record_matches_with_hits_in_each_field() -> None:
    hits = hits_of('("support group*" OR forum*) AND online', COPING)
    assert hits == (
        Hit('"support group*"', "abstract", "support groups"),
        Hit("forum*", "abstract", "forum"),
        Hit("forum*", "keywords", "forum"),
        Hit("online", "abstract", "online"),
    )


def test_topic_query_needs_every_concept() -> None:
    q = parse_query(TOPIC)
    assert q.match(COPING) is None  # online support groups, but no anxiety or depression
    assert q.match(COPING.with_changes(keywords=("Depression",))) is not None  # MeSH hit


def test_phrase_words_must_be_adjacent_and_in_order() -> None:
    record = Record(source="t", title="Groups that support people online")
    assert hits_of('"support group*"', record) is None
    assert hits_of('"people online"', record) == (Hit('"people online"', "title", "people online"),)
    assert hits_of('"online people"', record) is None


def test_truncation_and_word_boundaries() -> None:
    record = Record(source="t", title="Forums, anxietyx and depressive symptoms")
    assert hits_of("forum*", record) == (Hit("forum*", "title", "Forums"),)
    assert hits_of("forum", record) is None  # whole tokens only
    assert hits_of("anxiety", record) is None
    assert hits_of("depress*", record) == (Hit("depress*", "title", "depressive"),)
    assert hits_of("sympto*", record) is not None
    assert hits_of("ymptoms", record) is None  # a stem is a prefix, never a substring


def test_truncated_phrase_last_word_is_a_prefix() -> None:
    record = Record(source="t", abstract="Members of self help groupings and self-help group.")
    assert hits_of('"self-help group*"', record) == (
        Hit('"self-help group*"', "abstract", "self help groupings"),
        Hit('"self-help group*"', "abstract", "self-help group"),
    )


def test_case_hyphen_and_punctuation_are_folded() -> None:
    for text in ("SELF-HELP", "self help", "Self–help", "self‐help", "self_help", "self-\nhelp"):
        record = Record(source="t", title=f"The {text} movement")
        assert hits_of("self-help", record) == (Hit("self-help", "title", text),), text
    assert hits_of('"self help"', Record(source="t", title="self-help")) is not None
    assert hits_of("selfhelp", Record(source="t", title="self-help")) is None  # not joined


def test_diacritics_are_folded_both_ways() -> None:
    record = Record(
        source="t",
        title="Depresión y ansiedad en línea",
        abstract="Jørgensen studied Ångström-level naïve cafe\u0301 users.",  # e + combining
    )
    assert hits_of("linea", record) == (Hit("linea", "title", "línea"),)
    assert hits_of("depresion", record) == (Hit("depresion", "title", "Depresión"),)
    assert hits_of("DEPRÉSIÓN", record) is not None
    assert hits_of("jorgensen", record) == (Hit("jorgensen", "abstract", "Jørgensen"),)
    assert hits_of('"angstrom level"', record) is not None
    assert hits_of("naive", record) is not None
    # decomposed input is reported in NFC form
    assert hits_of("café", record) == (Hit("café", "abstract", "caf\u00e9"),)


def test_abstract_sections_and_other_abstracts_are_searched() -> None:
    assert hits_of("childbirth", PPD) == (Hit("childbirth", "abstract", "childbirth"),)
    german = Record(
        source="t",
        title="Selbsthilfe",
        other_abstracts=(OtherAbstract("de", "Online-Selbsthilfegruppen bei Angststörungen."),),
    )
    assert hits_of("angststorung*", german) == (Hit("angststorung*", "abstract", "Angststörungen"),)


def test_sections_repeated_in_the_abstract_are_not_counted_twice() -> None:
    record = Record(
        source="t",
        abstract="OBJECTIVE: Peer support online.",
        abstract_sections=(Section("OBJECTIVE", "Peer support online."),),
    )
    assert hits_of('"peer support"', record) == (Hit('"peer support"', "abstract", "Peer support"),)


def test_keyword_hits_and_no_phrase_across_two_keywords() -> None:
    assert hits_of('"text mining"', PPD) == (Hit('"text mining"', "keywords", "Text-mining"),)
    assert hits_of('"postpartum depression"', PPD) == (
        Hit('"postpartum depression"', "title", "postpartum depression"),
        Hit('"postpartum depression"', "abstract", "Postpartum depression"),
    )
    # "Depression, Postpartum" and "Mood Disorders" are separate headings
    assert hits_of('"postpartum mood"', PPD) is None
    assert hits_of('"processing scientific"', PPD) is None


def test_not_must_match_nowhere() -> None:
    assert hits_of("forum* NOT twitter", COPING) is not None
    assert hits_of('forum* NOT "social media"', COPING) is None  # title
    assert hits_of("forum* NOT facebook", COPING) is None  # abstract
    assert hits_of('forum* NOT "social media mining"', COPING) is None  # keyword only
    assert hits_of("forum* NOT (twitter OR gist)", COPING) is None
    assert hits_of("forum* NOT (gist AND twitter)", COPING) is not None


def test_negated_terms_never_appear_in_hits() -> None:
    hits = hits_of("depress* NOT (anxiety NOT postpartum)", PPD)
    assert hits is not None
    assert {h.term for h in hits} == {"depress*"}


def test_or_reports_every_branch_that_hit_and_and_only_when_true() -> None:
    assert hits_of("childbirth OR pubmed OR twitter", PPD) == (
        Hit("childbirth", "abstract", "childbirth"),
        Hit("pubmed", "abstract", "PubMed"),
    )
    # "postpartum AND twitter" is false, so its postpartum hits are not reasons to match
    hits = hits_of("(postpartum AND twitter) OR childbirth", PPD)
    assert hits == (Hit("childbirth", "abstract", "childbirth"),)


def test_hits_list_distinct_matched_texts_in_query_then_field_order() -> None:
    hits = hits_of("depress* disorder*", PPD)
    assert hits == (
        Hit("depress*", "title", "depression"),
        Hit("depress*", "abstract", "depression"),
        Hit("depress*", "abstract", "depressive"),
        Hit("depress*", "keywords", "Depressive"),
        Hit("depress*", "keywords", "Depression"),
        Hit("disorder*", "title", "disorder"),
        Hit("disorder*", "abstract", "disorder"),
        Hit("disorder*", "keywords", "Disorder"),
        Hit("disorder*", "keywords", "Disorders"),
    )


def test_score_weighs_title_over_abstract_over_keywords() -> None:
    assert FIELD_WEIGHTS["title"] > FIELD_WEIGHTS["abstract"] > FIELD_WEIGHTS["keywords"]
    q = parse_query('"postpartum depression"')
    in_title = q.match(PPD)  # title and abstract ("Depression, Postpartum" is not the phrase)
    in_abstract = q.match(PTSD)  # abstract and keywords
    only_keywords = q.match(PTSD.with_changes(abstract=None))
    assert in_title is not None and in_abstract is not None and only_keywords is not None
    assert in_title.score == 5.0
    assert in_abstract.score == 3.0
    assert only_keywords.score == 1.0
    # repeated words in one field do not inflate the score
    hit = Hit("x", "title", "x")
    assert Match((hit, Hit("x", "title", "X"))).score == Match((hit,)).score == 3.0


def test_index_record_is_reused_across_queries() -> None:
    index = index_record(PPD)
    assert parse_query("depress*").match(index) == parse_query("depress*").match(PPD)
    assert parse_query("twitter").match(index) is None


def test_record_without_text_never_matches() -> None:
    assert parse_query("anxiety").match(Record(source="t")) is None


# --- translations ----------------------------------------------------------------------------


TOPIC_TRANSLATIONS = {
    "pubmed": '("self-help group*"[tiab] OR "support group*"[tiab] OR "peer support"[tiab] OR '
    "forum*[tiab]) AND (online[tiab] OR internet[tiab]) AND (anxiety[tiab] OR depress*[tiab])",
    "europepmc": '(((TITLE_ABS:"self help" AND TITLE_ABS:group*) OR (KW:"self help" AND '
    "KW:group*)) OR ((TITLE_ABS:support AND TITLE_ABS:group*) OR (KW:support AND KW:group*)) "
    'OR (TITLE_ABS:"peer support" OR KW:"peer support") OR (TITLE_ABS:forum* OR KW:forum*)) '
    "AND ((TITLE_ABS:online OR KW:online) OR (TITLE_ABS:internet OR KW:internet)) AND "
    "((TITLE_ABS:anxiety OR KW:anxiety) OR (TITLE_ABS:depress* OR KW:depress*))",
    "crossref": "self-help group support peer forum online internet anxiety depress",
    "openalex": 'title_and_abstract.search:("self-help group" OR "support group" OR '
    '"peer support" OR forum) AND (online OR internet) AND (anxiety OR depress)',
    "arxiv": '(all:"self-help group" OR all:"support group" OR all:"peer support" OR '
    "all:forum) AND (all:online OR all:internet) AND (all:anxiety OR all:depress)",
    "biorxiv": "",
    "medrxiv": "",
    "semanticscholar": '(("self help" + group*) | (support + group*) | "peer support" | '
    "forum*) + (online | internet) + (anxiety | depress*)",
}

# A negated clause an API cannot say exactly (adolescen* without truncation) is left out:
# the API query may only be broader; local matching applies the NOT.
NOT_TRANSLATIONS = {
    "pubmed": "((anxiety[tiab] OR depress*[tiab]) AND online[tiab]) NOT (adolescen*[tiab] OR "
    '"young people"[tiab])',
    "europepmc": "(((TITLE_ABS:anxiety OR KW:anxiety) OR (TITLE_ABS:depress* OR KW:depress*)) "
    "AND (TITLE_ABS:online OR KW:online)) NOT ((TITLE_ABS:adolescen* OR KW:adolescen*) OR "
    '(TITLE_ABS:"young people" OR KW:"young people"))',
    "crossref": "anxiety depress online",
    "openalex": 'title_and_abstract.search:((anxiety OR depress) AND online) NOT "young people"',
    "arxiv": '((all:anxiety OR all:depress) AND all:online) ANDNOT (ti:"young people" OR '
    'abs:"young people")',
    "biorxiv": "",
    "medrxiv": "",
    "semanticscholar": '((anxiety | depress*) + online) + -(adolescen* | "young people")',
}


@pytest.mark.parametrize("source", sorted(TOPIC_TRANSLATIONS))
def test_topic_translation(source: str) -> None:
    assert TRANSLATORS[source](parse_query(TOPIC)) == TOPIC_TRANSLATIONS[source]


@pytest.mark.parametrize("source", sorted(NOT_TRANSLATIONS))
def test_not_translation(source: str) -> None:
    assert TRANSLATORS[source](parse_query(NOT_QUERY)) == NOT_TRANSLATIONS[source]


def test_registry_covers_every_source_once() -> None:
    assert sorted(TRANSLATORS) == sorted(
        [
            "pubmed",
            "europepmc",
            "crossref",
            "openalex",
            "arxiv",
            "biorxiv",
            "medrxiv",
            "semanticscholar",
        ]
    )
    assert TRANSLATORS["pubmed"] is to_pubmed and TRANSLATORS["arxiv"] is to_arxiv


def test_precedence_is_made_explicit_for_left_to_right_apis() -> None:
    # PubMed evaluates Boolean operators left to right: "a OR b AND c" would mean (a OR b) AND c
    q = parse_query("a OR b c")
    assert to_pubmed(q) == "a[tiab] OR (b[tiab] AND c[tiab])"
    assert to_arxiv(q) == "all:a OR (all:b AND all:c)"
    assert to_semanticscholar(q) == "a | (b + c)"


def test_single_negation_and_hyphenated_terms() -> None:
    q = parse_query("self-help NOT covid-19")
    assert to_pubmed(q) == "self-help[tiab] NOT covid-19[tiab]"
    assert to_europepmc(q) == (
        '(TITLE_ABS:"self-help" OR KW:"self-help") NOT (TITLE_ABS:"covid-19" OR KW:"covid-19")'
    )
    assert to_openalex(q) == 'title_and_abstract.search:"self-help" NOT "covid-19"'
    assert to_arxiv(q) == 'all:"self-help" ANDNOT (ti:"covid-19" OR abs:"covid-19")'
    assert to_semanticscholar(q) == '"self-help" + -"covid-19"'
    assert to_crossref(q) == "self-help"


def test_a_nested_not_keeps_its_meaning_or_is_dropped_whole() -> None:
    # inside a negated AND nothing may be dropped: a clause that cannot be said exactly
    # removes the whole exclusion
    q = parse_query("anxiety NOT (child* online)")
    assert to_openalex(q) == "title_and_abstract.search:anxiety"
    assert to_pubmed(q) == "anxiety[tiab] NOT (child*[tiab] AND online[tiab])"
    # a NOT inside a NOT is positive again: approximations are allowed there
    q = parse_query("anxiety NOT (online NOT forum*)")
    assert to_openalex(q) == "title_and_abstract.search:anxiety NOT (online NOT forum)"


def test_quoted_operator_words_stay_words() -> None:
    q = parse_query('"and" anxiety')
    assert to_pubmed(q) == '"and"[tiab] AND anxiety[tiab]'
    assert to_openalex(q) == 'title_and_abstract.search:"and" AND anxiety'
    assert to_arxiv(q) == 'all:"and" AND all:anxiety'


def test_crossref_words_are_distinct_ignoring_case_and_accents() -> None:
    q = parse_query('"Peer support" OR peer OR Ansiedad OR ansiedad OR "support group*"')
    assert to_crossref(q) == "Peer support Ansiedad group"


def test_translations_are_pure_strings_for_any_valid_query() -> None:
    for text in (TOPIC, NOT_QUERY, "a", '"x y zeta*"', "a NOT (b NOT (c NOT d))"):
        query = parse_query(text)
        assert isinstance(query, Query)
        for translate in TRANSLATORS.values():
            assert "," not in translate(query)
