"""Counts one Autobahn report's outcomes for an agent and lists every case that was not OK."""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


def main(report_dir: str, agent: str, role: str) -> int:
    index = json.loads((Path(report_dir) / "index.json").read_text())
    results = index[agent]
    counts: collections.Counter[str] = collections.Counter()
    bad = []
    for case, result in sorted(results.items(), key=lambda item: [int(p) for p in item[0].split(".")]):
        behavior, close = result["behavior"], result["behaviorClose"]
        counts[behavior] += 1
        if behavior != "OK" or close not in ("OK", "INFORMATIONAL"):
            bad.append(f"  {case}: {behavior} (close {close})")
    print(f"Autobahn|Testsuite, ohws as {role}:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("\n".join(bad) if bad else "  every case OK")
    return 1 if counts["FAILED"] else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
