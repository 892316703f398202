"""Splits of a data set's interactions and the leak-free message-passing graph."""

from kgrec.data.splits import SPLIT_METHODS, Split, SplitConfig, make_split

__all__ = ["SPLIT_METHODS", "Split", "SplitConfig", "make_split"]
