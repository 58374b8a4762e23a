"""One progress style (plumbing/steps.py): a line per step off a terminal, a bar redrawn in
place on one."""

import io

from robust_ssl.plumbing.steps import Steps


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_each_step_is_one_line_with_the_time_left():
    out = io.StringIO()
    steps = Steps(3, "claims", stream=out)
    for label in ("a", "b", "c"):
        steps.step(label)
    lines = out.getvalue().splitlines()
    assert [l.split(" (")[0] for l in lines] == ["[1/3] claims: a", "[2/3] claims: b",
                                                  "[3/3] claims: c"]
    assert "left)" in lines[0] and "left" not in lines[2] and "\r" not in out.getvalue()


def test_on_a_terminal_a_bar_is_redrawn_and_the_last_line_stays():
    out = Terminal()
    steps = Steps(4, "timing", stream=out)
    for label in "abcd":
        steps.step(label)
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1
    last = text.rsplit("\r", 1)[1].removeprefix("\033[K")  # the line cleared, then drawn
    assert last.startswith("█" * 20) and "[4/4] timing: d" in last
