"""How edit_file finds the text to replace (pure functions, no files)."""

from __future__ import annotations

import pytest

from nexus_ls.tools.editmatch import EditError, apply_edit, closest_start, normalise

SOURCE = """class Greeter:
    def greet(self, name):
        message = "hello " + name
        return message

    def leave(self):
        return "bye"
"""


def test_exact_single_occurrence_is_replaced() -> None:
    change = apply_edit(SOURCE, 'return "bye"', 'return "ciao"')
    assert change.method == "exact"
    assert change.text == SOURCE.replace('return "bye"', 'return "ciao"')
    assert (change.start_line, change.end_line) == (7, 7)


def test_exact_multiline_reports_its_lines() -> None:
    change = apply_edit(
        SOURCE, "    def leave(self):\n        return", "    def go(self):\n        return"
    )
    assert (change.start_line, change.end_line) == (6, 7)
    assert "def go(self)" in change.text and "def leave" not in change.text


def test_several_occurrences_are_refused_with_count_and_lines() -> None:
    with pytest.raises(EditError) as info:
        apply_edit(SOURCE, "return", "yield")
    assert "matches 2 places (lines 4, 7)" in str(info.value)
    assert "more surrounding lines" in str(info.value)


def test_whitespace_tolerant_match_reindents_new() -> None:
    old = 'message = "hello " + name\nreturn   message'
    new = 'message = f"hello {name}"\nif name:\n    return message\nreturn ""'
    change = apply_edit(SOURCE, old, new)
    assert change.method == "whitespace"
    assert (change.start_line, change.end_line) == (3, 4)
    assert change.text == SOURCE.replace(
        '        message = "hello " + name\n        return message\n',
        '        message = f"hello {name}"\n'
        "        if name:\n"
        "            return message\n"
        '        return ""\n',
    )


def test_whitespace_tolerant_match_removes_extra_indentation() -> None:
    text = "if x:\n  a = 1\n  b = 2\n"
    change = apply_edit(
        text, "        a = 1\n        b = 2\n", "        a = 10\n            b = 20\n"
    )
    assert change.text == "if x:\n  a = 10\n      b = 20\n"


def test_whitespace_tolerant_match_can_delete_lines() -> None:
    change = apply_edit("a\n  b  \nc\n", "b\n", "")
    assert change.text == "a\nc\n"


def test_whitespace_tolerant_ambiguity_is_refused() -> None:
    text = "def a():\n    pass\n\ndef b():\n  pass\n"
    with pytest.raises(EditError, match=r"matches 2 places \(lines 2, 5\)"):
        apply_edit(text, "pass ", "return")


def test_not_found_quotes_closest_lines_with_numbers() -> None:
    with pytest.raises(EditError) as info:
        apply_edit(SOURCE, "    def leave(self):\n        return 'bye'\n", "x")
    message = str(info.value)
    assert "not found" in message
    assert '     6|     def leave(self):\n     7|         return "bye"' in message
    assert "     1| class Greeter:" not in message


def test_not_found_uses_similarity_when_no_line_matches() -> None:
    with pytest.raises(EditError) as info:
        apply_edit(SOURCE, "    def greet(self, nme):", "x")
    assert "     2|     def greet(self, name):" in str(info.value)


def test_not_found_without_anything_similar_points_to_read_file() -> None:
    with pytest.raises(EditError, match="use read_file"):
        apply_edit(SOURCE, "zzzzqqqq 0987", "x")


def test_empty_old_is_refused() -> None:
    with pytest.raises(EditError, match="`old` is empty"):
        apply_edit(SOURCE, "  \n", "x")


def test_helpers() -> None:
    assert normalise("  a \t b  ") == "a b"
    lines = ["x", "alpha", "beta", "gamma", "y"]
    assert closest_start(lines, ["beta", "gamma", "delta"]) == 2
    assert closest_start([], ["a"]) is None
