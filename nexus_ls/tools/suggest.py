"""What the model probably meant when it names a path that does not exist.

Models often remember a file in the wrong folder, or misspell it. Naming the closest
project files in the error ("did you mean src/a.py?") saves a `list_files` round trip.
The candidates are the files `project_files` lists (ignored files and `.git` left out),
plus their folders when the wrong path looks like a folder.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from nexus_ls.tools.listing import project_files

PATH_CUTOFF = 0.7  # difflib ratio a whole path needs to be suggested
NAME_CUTOFF = 0.7  # and a basename (lower: `zzz.py` already scores 0.6 against `a.py`)
STEM_CUTOFF = 0.55  # and the names without their common extension (`x.py`, `y.py`: 0)


def closest_paths(
    root: Path, path: str, git_env: Mapping[str, str] | None = None, limit: int = 3
) -> list[str]:
    """Up to `limit` existing project paths closest to `path`, best first: the same basename
    elsewhere, then close whole paths, then close basenames anywhere. Folders (spelled with
    a trailing `/`) are candidates too when `path` ends in `/` or its last part has no
    extension. Case is ignored when comparing."""
    wrong = _normal(root, path)
    if not wrong or limit < 1:
        return []
    try:
        files = project_files(root, root, None, git_env)
    except (OSError, ValueError):
        return []
    wrong_key = wrong.lower()
    folder, _, name = wrong_key.rpartition("/")
    as_folder = path.endswith("/") or "." not in name.lstrip(".")
    folders = _folders(files)
    by_key: dict[str, str] = {}  # lower-cased path -> its spelling
    by_name: dict[str, list[str]] = {}  # lower-cased basename -> lower-cased paths
    in_folder: dict[str, list[str]] = {}  # lower-cased folder -> lower-cased paths in it
    for candidate in files + (folders if as_folder else []):
        key = candidate.rstrip("/").lower()
        by_key.setdefault(key, candidate)
        parent, _, base = key.rpartition("/")
        by_name.setdefault(base, []).append(key)
        in_folder.setdefault(parent, []).append(key)

    picked = _closest(wrong_key, by_name.get(name, []), limit, 0.0)
    # Whole paths: only those in the folders closest to the wrong path's folder are
    # compared (difflib over every path of a large tree takes most of a second).
    near = [folder] if folder in in_folder else []
    near += _closest(folder, [f.rstrip("/").lower() for f in folders], 5, 0.5)
    nearby = [key for f in dict.fromkeys(near) for key in in_folder.get(f, [])]
    picked += _closest(
        wrong_key, nearby, limit, PATH_CUTOFF, lambda key: _alike(name, key.rpartition("/")[2])
    )
    for base in _closest(name, by_name, limit, NAME_CUTOFF, lambda base: _alike(name, base)):
        picked += _closest(wrong_key, by_name[base], limit, 0.0)
    result: list[str] = []
    for key in dict.fromkeys(picked):
        if by_key[key].rstrip("/") != wrong:  # the same path in another case is a find
            result.append(by_key[key])
            if len(result) == limit:
                break
    return result


def not_found(
    root: Path, path: str, git_env: Mapping[str, str] | None = None, hint: str = ""
) -> str:
    """`{path} does not exist; did you mean a, b?{hint}`, or `{path} does not exist{hint}`
    when no project path is close."""
    close = closest_paths(root, path, git_env)
    if close:
        return f"{path} does not exist; did you mean {', '.join(close)}?{hint}"
    return f"{path} does not exist{hint}"


def _normal(root: Path, path: str) -> str:
    """`path` as a posix path relative to `root` ('' when it names the root itself)."""
    text = path.strip().replace(os.sep, "/")
    if os.path.isabs(text):
        for prefix in (str(root), os.path.realpath(root)):
            prefix = prefix.rstrip("/") + "/"
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
    text = os.path.normpath(text.lstrip("/") or ".").replace(os.sep, "/")
    return "" if text == "." else text


def _alike(name: str, other: str) -> bool:
    """Whether two basenames are alike, apart from a shared extension: `.py` alone makes
    `__init__.py` and `io_net_1.py` look close, their stems do not."""
    stem, dot, ext = name.rpartition(".")
    other_stem, other_dot, other_ext = other.rpartition(".")
    if dot and other_dot and stem and other_stem and ext == other_ext:
        name, other = stem, other_stem
    if name == other:
        return True
    return difflib.SequenceMatcher(None, name, other, autojunk=False).ratio() >= STEM_CUTOFF


def _closest(
    word: str,
    candidates: Iterable[str],
    n: int,
    cutoff: float,
    accept: Callable[[str], bool] | None = None,
) -> list[str]:
    """`difflib.get_close_matches` (less the candidates `accept` refuses), best first, ties
    by name, and faster: candidates are taken in order of `quick_ratio` (an upper bound of
    `ratio`), and the expensive `ratio` stops once none left can beat the n-th best."""
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(word)
    bounds: list[tuple[float, str]] = []
    for candidate in candidates:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= cutoff:
            bound = matcher.quick_ratio()
            if bound >= cutoff:
                bounds.append((bound, candidate))
    bounds.sort(key=lambda item: (-item[0], item[1]))
    best: list[tuple[float, str]] = []
    for bound, candidate in bounds:
        if len(best) >= n and bound < best[-1][0]:
            break
        if accept is not None and not accept(candidate):
            continue
        matcher.set_seq1(candidate)
        score = matcher.ratio()
        if score >= cutoff:
            best.append((score, candidate))
            best.sort(key=lambda item: (-item[0], item[1]))
            del best[n:]
    return [candidate for _, candidate in best]


def _folders(files: list[str]) -> list[str]:
    """Every folder holding a project file, spelled with a trailing `/`."""
    folders: set[str] = set()
    for name in files:
        cut = name.rfind("/")
        while cut > 0:
            folder = name[:cut]
            if folder in folders:
                break
            folders.add(folder)
            cut = name.rfind("/", 0, cut)
    return sorted(f + "/" for f in folders)
