"""How the prompt grows over a long run: NEXUS's bounded history beside the whole one.

A scripted in-process model reads a 200-line file at every step (the worst steady case:
every observation is large), a line further on each time (the same read fifty times over
would be stopped as stuck). The prompt's size is measured as the characters the model
is shown, in tokens at four characters each, at steps 1, 5, 10, 20 and 50; "whole" is
the same conversation with nothing shortened or folded (what the loop sent before).
The target: step 50 / step 5 <= 3.

    python3 benchmarks/context.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agent_harness import run_agent  # noqa: E402
from scripted_model import call  # noqa: E402
from table import print_table  # noqa: E402

from nexus_ls.config import Limits  # noqa: E402

STEPS = 50
MARKS = (1, 5, 10, 20, 50)


def _repo(root: Path) -> Path:
    root.mkdir()
    text = "".join(f"def function_{n}(value):\n    return value + {n}\n" for n in range(100))
    (root / "module.py").write_text(text)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
            cwd=root,
            check=True,
        )
    return root


def _tokens(prompt: list[dict]) -> int:
    return sum(len(m["content"]) for m in prompt) // 4


def main() -> int:
    script = [call("read_file", path="module.py", start_line=n) for n in range(1, STEPS + 1)]
    script.append(call("finish", summary="read"))
    limits = Limits(max_steps=STEPS + 5, max_tokens=10**9, wall_time=600)
    rows: list[list[object]] = [["step", "NEXUS prompt tokens", "whole history tokens"]]
    with tempfile.TemporaryDirectory() as tmp:
        bounded = run_agent(_repo(Path(tmp) / "a"), list(script), limits=limits)
        # The same run with nothing shortened and no window to fold at.
        whole = run_agent(_repo(Path(tmp) / "b"), list(script), limits=limits,
                          keep_turns=10**6, window=10**9)  # fmt: skip
    for mark in MARKS:
        rows.append([mark, _tokens(bounded.model.prompts[mark - 1]),
                     _tokens(whole.model.prompts[mark - 1])])  # fmt: skip
    print_table(rows)
    ratio = _tokens(bounded.model.prompts[STEPS - 1]) / _tokens(bounded.model.prompts[4])
    whole_ratio = _tokens(whole.model.prompts[STEPS - 1]) / _tokens(whole.model.prompts[4])
    print(f"\nstep {STEPS} / step 5: NEXUS {ratio:.2f} (target <= 3), whole {whole_ratio:.2f}")
    return 0 if ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
