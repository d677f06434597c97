"""Capping output: head and tail kept, the cut announced with its size."""

from __future__ import annotations

import re
import tempfile

from nexus_ls.tools.output import cap, cap_file

NOTE = re.compile(r"\[\.\.\. ([\d,]+) (characters|bytes) cut \.\.\.\]")


def test_short_text_is_unchanged() -> None:
    assert cap("abc\n", 10) == "abc\n"
    assert cap("x" * 100, 100) == "x" * 100


def test_long_text_keeps_head_and_tail_and_counts_the_cut() -> None:
    text = "".join(f"line {n:05}\n" for n in range(10_000))
    capped = cap(text, 1_000)
    assert len(capped) <= 1_000
    assert capped.startswith("line 00000\n")
    assert capped.endswith("line 09999\n")
    match = NOTE.search(capped)
    assert match is not None and match.group(2) == "characters"
    kept = capped.replace(match.group(0) + "\n", "")
    assert int(match.group(1).replace(",", "")) == len(text) - len(kept)


def test_cuts_fall_on_line_ends() -> None:
    text = "".join(f"{n:04}\n" for n in range(1_000))
    capped = cap(text, 200)
    lines = capped.splitlines()
    assert all(re.fullmatch(r"\d{4}", line) or NOTE.fullmatch(line) for line in lines)


def test_large_file_is_read_by_its_ends() -> None:
    with tempfile.TemporaryFile() as stream:
        stream.write(b"HEAD\n" + b"z" * 5_000_000 + b"\nTAIL\n")
        capped = cap_file(stream, 2_000)
    assert len(capped) <= 2_000
    assert capped.startswith("HEAD\n") and capped.endswith("TAIL\n")
    match = NOTE.search(capped)
    assert match is not None and int(match.group(1).replace(",", "")) > 4_990_000


def test_small_file_is_returned_whole() -> None:
    with tempfile.TemporaryFile() as stream:
        stream.write("héllo\n".encode())
        assert cap_file(stream, 100) == "héllo\n"
