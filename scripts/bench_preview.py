"""Times the rule builder's calls on a running server: as a person builds a segment rule by
rule, the builder sends POST /preview and POST /validate after each change. Prints each
step's time (median of --runs) and the count.

    .venv/bin/python scripts/bench_preview.py --url http://127.0.0.1:8000 --key fold_... \\
        --bucket demo --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx

STEPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("no rules", []),
    ("+ membership_status equals active",
     [{"field": "membership_status", "operator": "equals", "value": "active"}]),
    ("+ address.locality is any of 3 cities",
     [{"field": "membership_status", "operator": "equals", "value": "active"},
      {"field": "address.locality", "operator": "or_list",
       "value": ["London", "Bristol", "Manchester"]}]),
    ("+ joined after today-3y",
     [{"field": "membership_status", "operator": "equals", "value": "active"},
      {"field": "address.locality", "operator": "or_list",
       "value": ["London", "Bristol", "Manchester"]},
      {"field": "joined", "operator": "greater_than", "value": "today-3y"}]),
    ("change: tags equals donor instead of joined",
     [{"field": "membership_status", "operator": "equals", "value": "active"},
      {"field": "address.locality", "operator": "or_list",
       "value": ["London", "Bristol", "Manchester"]},
      {"field": "tags", "operator": "equals", "value": "donor"}]),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--bucket", default="demo")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        warm = client.post(f"/segments/v2/{args.bucket}/preview", json={"resource_type": "person"})
        warm.raise_for_status()
        print(f"first call (loads the column index): {(time.perf_counter() - started):.1f} s")
        print(f"{'step':46} {'preview ms':>11} {'validate ms':>12} {'count':>9}")
        for name, rules in STEPS:
            body = {"resource_type": "person", "rules": rules, "page_size": 5}
            times: dict[str, list[float]] = {"preview": [], "validate": []}
            count = None
            for _ in range(args.runs):
                for call in ("preview", "validate"):
                    started = time.perf_counter()
                    answer = client.post(f"/segments/v2/{args.bucket}/{call}", json=body)
                    times[call].append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
                    if call == "preview":
                        count = answer.json()["count"]
            print(
                f"{name:46} {statistics.median(times['preview']):11.1f} "
                f"{statistics.median(times['validate']):12.1f} {count:>9,}"
            )


if __name__ == "__main__":
    main()
