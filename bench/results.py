"""bench/results.json: `{"targets": [...], "figures": {...}}`, each benchmark owning its own
targets (by name prefix) and figures (by section), so they can run alone or together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")


def target(name: str, value: float, unit: str, bound: str, met: bool) -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": bound, "met": met}


def record(section: str, targets: list[dict[str, Any]], figures: dict[str, Any]) -> None:
    current: dict[str, Any] = {"targets": [], "figures": {}}
    if RESULTS.exists():
        current = json.loads(RESULTS.read_text())
    # Replace this benchmark's previous targets (remembered by name in its figures), keep the
    # other benchmarks' ones.
    previous = set(current["figures"].get(section, {}).get("target_names", []))
    names = {t["name"] for t in targets}
    kept = [t for t in current["targets"] if t["name"] not in previous | names]
    current["targets"] = kept + targets
    current["figures"][section] = {**figures, "target_names": sorted(names)}
    RESULTS.write_text(json.dumps(current, indent=2) + "\n")
    for t in targets:
        mark = "met   " if t["met"] else "MISSED"
        print(f"  {mark} {t['name']}: {t['value']} {t['unit']} (target {t['target']})")
    print(f"wrote {RESULTS}")
