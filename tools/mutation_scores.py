"""Print the mutation score of each mutated module after ``make mutation`` (``mutmut run``).

    python tools/mutation_scores.py [MUTANTS_DIR]

mutmut keeps its verdicts in ``mutants/<module path>.py.meta``; ``mutmut results`` lists the
survivors but no per-module numbers, which the README records. A mutant counts as killed when
a test failed or timed out against it (a timeout is an endless loop the mutant made); "no
tests" means no selected test reached the function. The score is killed / total.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def scores(mutants: Path) -> list[tuple[str, Counter[str]]]:
    """(module path, counts of killed/survived/no tests/not checked/other) per module."""
    rows = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        verdicts = json.loads(meta.read_text())["exit_code_by_key"].values()
        counts: Counter[str] = Counter()
        for code in verdicts:
            if code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
            elif code in NO_TESTS:
                counts["no tests"] += 1
            elif code is None:
                counts["not checked"] += 1
            else:
                counts["other"] += 1
        rows.append((str(meta.relative_to(mutants))[: -len(".meta")], counts))
    return rows


def main(argv: list[str]) -> int:
    mutants = Path(argv[1] if len(argv) > 1 else "mutants")
    rows = scores(mutants)
    if not rows:
        print(f"no mutmut results in {mutants}/: run `make mutation` first", file=sys.stderr)
        return 1
    print(f"{'module':40} {'killed':>7} {'total':>6} {'score':>6}  survived, no tests, other")
    for name, counts in [*rows, ("all", sum((c for _, c in rows), Counter()))]:
        total = sum(counts.values())
        score = counts["killed"] / total if total else 0.0
        rest = f"{counts['survived']}, {counts['no tests']}, {counts['other']}"
        unchecked = f" ({counts['not checked']} not checked)" if counts["not checked"] else ""
        print(f"{name:40} {counts['killed']:>7} {total:>6} {score:>6.1%}  {rest}{unchecked}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
