"""The validation grid search: the best value wins, the first of equals, and it is left set."""

from kgrec.models.tuning import choose


def test_choose_keeps_the_best_and_the_first_of_equals():
    state = {"w": None}
    scores = {0.0: 0.1, 0.5: 0.3, 1.0: 0.3, 2.0: 0.2}
    got = choose(lambda v: state.__setitem__("w", v), [0.0, 0.5, 1.0, 2.0], lambda m: scores[state["w"]], None)
    assert got == 0.5 and state["w"] == 0.5
    assert choose(lambda v: state.__setitem__("w", v), [2.0], lambda m: scores[state["w"]], None) == 2.0
