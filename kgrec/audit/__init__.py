"""kgrec audit: causal effects, fairness, explanations and the report."""
