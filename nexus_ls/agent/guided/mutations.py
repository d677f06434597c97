"""Small generated edits of the lines a failing test points at: the classic mutation
operators of automated program repair (an operator or comparison swapped, a number off by
one, a name replaced by another in scope).

A tiny model rarely writes the right line, but it can often tell the right one among a few,
and the tests always can. None of these is applied without its check (guided/search.py).
"""

from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize
from dataclasses import dataclass

MAX_MUTATIONS = 40
MAX_NAMES = 6  # other names tried in place of one name

# What each operator may have been meant as, most likely first.
SWAPS: dict[str, tuple[str, ...]] = {
    "+": ("-", "*"),
    "-": ("+",),
    "*": ("+", "/", "**"),
    "/": ("*", "//"),
    "//": ("/", "%"),
    "%": ("//",),
    "**": ("*",),
    "+=": ("-=",),
    "-=": ("+=",),
    "*=": ("/=",),
    "<": ("<=", ">"),
    "<=": ("<", ">="),
    ">": (">=", "<"),
    ">=": (">", "<="),
    "==": ("!=",),
    "!=": ("==",),
    "and": ("or",),
    "or": ("and",),
    "True": ("False",),
    "False": ("True",),
    "min": ("max",),
    "max": ("min",),
}
_TEST_OUTPUT_LINE = re.compile(r"([\w./-]+\.py)(?::(\d+)|\", line (\d+))")


@dataclass(frozen=True)
class Mutation:
    """`line` of the file (found exactly once there) changed into `new`."""

    line: str
    new: str
    number: int  # the line's number in the file, 1-based
    operator: str  # what changed, for the journal: "`-` → `+`"


def _tokens(line: str) -> list[tokenize.TokenInfo]:
    """The line's tokens; a line that opens a bracket it does not close still gives those
    before the end. Strings and comments are tokens of their own, so nothing in them changes."""
    found: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.strip("\n") + "\n").readline):
            found.append(token)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _replace(line: str, token: tokenize.TokenInfo, text: str) -> str:
    start, end = token.start[1], token.end[1]
    return line[:start] + text + line[end:]


def mutate_line(line: str, number: int, names: list[str]) -> list[Mutation]:
    """Every single-token change of `line` the operators above allow, and each name in it
    replaced by another of `names` (the names in scope where it stands). Operator swaps
    come first, then numbers, then names: the order in which such bugs are most common."""
    swaps: list[Mutation] = []
    numbers: list[Mutation] = []
    renames: list[Mutation] = []
    for token in _tokens(line):
        text = token.string
        if token.type == tokenize.OP or (token.type == tokenize.NAME and text in SWAPS):
            for other in SWAPS.get(text, ()):
                new = _replace(line, token, other)
                swaps.append(Mutation(line, new, number, f"`{text}` → `{other}`"))
        elif token.type == tokenize.NUMBER and re.fullmatch(r"\d+", text):
            value = int(text)
            for changed in (value + 1, value - 1):
                if changed >= 0:
                    new = _replace(line, token, str(changed))
                    why = f"`{text}` → `{changed}` (off by one)"
                    numbers.append(Mutation(line, new, number, why))
        elif token.type == tokenize.NAME and text in names and not keyword.iskeyword(text):
            for other in [n for n in names if n != text][:MAX_NAMES]:
                new = _replace(line, token, other)
                why = f"`{text}` → `{other}` (name in scope)"
                renames.append(Mutation(line, new, number, why))
    return swaps + numbers + renames


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _scope_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The function's parameters and the names it assigns, in order of appearance."""
    names: list[str] = []
    args = function.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.arg not in names:
            names.append(arg.arg)
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    return names


def suspect_lines(source: str, path: str, output: str) -> list[tuple[int, list[str]]]:
    """(line number, names in scope) of the lines to mutate: those of `path` the failing
    output names, then the bodies of the file's functions the output mentions by name (a
    failing assertion on `add(2, 3)` names `add`, though no line of it is in the traceback)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    functions = _functions(tree)

    def scope(number: int) -> list[str]:
        around = [f for f in functions if f.lineno <= number <= (f.end_lineno or f.lineno)]
        return _scope_names(around[-1]) if around else []

    found: dict[int, list[str]] = {}
    for match in _TEST_OUTPUT_LINE.finditer(output):
        name, number = match.group(1), int(match.group(2) or match.group(3))
        if (name == path or name.endswith("/" + path)) and number not in found:
            found[number] = scope(number)
    lines = source.split("\n")  # as ast and tracebacks count lines (not at \f or \x85)
    for function in functions:
        if not re.search(rf"\b{re.escape(function.name)}\(", output):
            continue
        body = function.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if not body:
            continue
        for number in range(body[0].lineno, (function.end_lineno or body[-1].lineno) + 1):
            if number not in found and number <= len(lines) and lines[number - 1].strip():
                found[number] = _scope_names(function)
    return list(found.items())


def string_lines(source: str) -> set[int]:
    """Line numbers inside multi-line strings, whose text is data, not code to mutate."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            end = node.end_lineno or node.lineno
            found.update(range(node.lineno + 1, end + 1))
            if end > node.lineno:
                found.add(node.lineno)
    return found


def mutations(source: str, path: str, output: str) -> list[Mutation]:
    """The generated edits to try for a failing test, the lines it names first, at most
    MAX_MUTATIONS; only lines found once in the file (an edit must be unambiguous)."""
    lines = source.split("\n")
    out: list[Mutation] = []
    seen: set[tuple[str, str]] = set()
    inside = string_lines(source)
    for number, names in suspect_lines(source, path, output):
        if number > len(lines) or number in inside:
            continue
        line = lines[number - 1]
        if source.count(line) != 1 or line.lstrip().startswith(("def ", "class ", "@", "#")):
            continue
        for mutation in mutate_line(line, number, names):
            key = (mutation.line, mutation.new)
            if key not in seen and mutation.new != line:
                seen.add(key)
                out.append(mutation)
    return out[:MAX_MUTATIONS]
