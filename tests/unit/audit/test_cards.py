"""The model card's training sentence: a cap (epochs, wall clock, an update's steps) is called one."""

from __future__ import annotations

import pytest

from kgrec.audit.cards import _training_stop


@pytest.mark.parametrize("info, capped, tail", [
    ({"stop_reason": "epochs", "epochs_run": 300}, True, "after 300 epochs"),
    ({"stop_reason": "max_seconds", "epochs_run": 12}, True, "after 12 epochs"),
    ({"stop_reason": "steps", "steps_run": 200, "epochs_run": None}, True, "after 200 steps"),
    ({"stop_reason": "early_stopping", "epochs_run": 47}, False, "after 47 epochs"),
    ({"stop_reason": "closed_form", "epochs_run": 1}, False, "fitted in closed form"),
])
def test_caps_are_named(info, capped, tail):
    text = _training_stop(info)
    assert text.startswith("Training was capped") == capped and tail in text
    assert "None" not in text
