"""The glossary lists exactly the terms the report uses; rates read as counts."""

from __future__ import annotations

from kgrec.audit.glossary import GLOSSARY, glossary_section, used_terms
from kgrec.audit.report.model import Section, Table
from kgrec.audit.sections import _count_of


def test_only_used_terms_are_defined():
    body = [Section("a", "Accuracy", ["NDCG@10 over 900 users"],
                    [Table(["group", "Recall@10"], [], "Per group")]),
            Section("b", "Explanations", ["Attributions sum to the score minus the baseline ..."], [], [], [],
                    subsections=[Section("c", "Paths", ["a knowledge-graph path"])])]
    terms = used_terms(body)
    assert terms[:2] == ["NDCG@K", "Recall@K"]
    assert "Knowledge-graph path" in terms and "Integrated Gradients" in terms
    assert "IPS / SNIPS / DR" not in terms and "Gini (exposure)" not in terms
    section = glossary_section(body)
    assert [r[0] for r in section.tables[0].rows] == terms
    assert all(section.data[t] == GLOSSARY[t][1] for t in terms)


def test_cue_words_match_at_word_starts_only():
    assert "Effective sample size (ESS)" not in used_terms([Section("a", "Process and access", [])])
    assert "Effective sample size (ESS)" in used_terms([Section("a", "x", ["ESS 120"])])
    assert "Bootstrap CI" not in used_terms([Section("a", "The city of Cincinnati", [])])
    assert "Bootstrap CI" in used_terms([Section("a", "x", ["95% CIs over 200 resamples"])])
    assert "0.8 rule (group ratio)" not in used_terms([Section("a", "exposure/relevance ratio", [])])


def test_rates_are_written_as_counts():
    assert _count_of(1.0, 20) == "20 of 20 cases (100%)"
    assert _count_of(0.9, 20) == "18 of 20 cases (90%)"
    assert _count_of(float("nan"), 0).startswith("no case")
