"""Serving: answering recommendation requests from a finished run (``kgrec serve``)."""
