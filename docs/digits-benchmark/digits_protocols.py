"""Compare every digits protocol stored in a cache on the same uniform sample of space-1 models.

    python docs/digits-benchmark/digits_protocols.py CACHE [--limit N]

For each protocol in the SQLite cache CACHE: the NAS-Bench-101 character (bench.truth.character) of its
stored models among the first N of space 1's fixed tabulation order (what `python -m bench.tabulate
--benchmark digits --space 1 --limit N --protocol ...` trains), as one Markdown row. Trains nothing.
The candidates were trained with, e.g.,

    nice -n 5 python -m bench.tabulate --benchmark digits --space 1 --limit 200 --no-shipped \\
        --cache CACHE --protocol num_stacks=3 --protocol modules_per_stack=1 --protocol learning_rate=0.05
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import asdict

from bench.search.spaces import SearchSpace
from bench.truth.character import CharacterError, table_character
from bench.truth.digits import DigitsBenchmark, DigitsProtocol
from bench.truth.tabulate import tabulation_order

SHOWN = ("num_stacks", "modules_per_stack", "stem_channels", "epochs", "batch_size", "learning_rate")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--min-models", type=int, default=5, help="skip protocols with fewer stored models")
    args = p.parse_args()
    specs = SearchSpace(1).unique_specs()
    sample = {h: specs[h] for h in tabulation_order(specs)[: args.limit]}
    with sqlite3.connect(args.cache) as conn:
        protocols = [j for (j,) in conn.execute("SELECT protocol_json FROM protocols")]
    default = asdict(DigitsProtocol())
    print(
        "| stacks x cells | stem | epochs | batch | LR | models | repeat Spearman | Spearman(acc, params) "
        "| Spearman(acc, #conv3x3) | 5th / 50th / 95th % | 5-95 spread (points) | CPU s / training "
        "| all four |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for text in protocols:
        fields = json.loads(text)
        bench = DigitsBenchmark(args.cache, DigitsProtocol(**fields), shipped=[])
        try:
            c = table_character(bench, sample)
        except CharacterError:
            continue
        if c.n_models < args.min_models:
            continue
        other = {k: v for k, v in fields.items() if k not in SHOWN and v != default[k]}
        note = f" ({other})" if other else ""
        print(
            f"| {fields['num_stacks']} x {fields['modules_per_stack']}{note} | {fields['stem_channels']} "
            f"| {fields['epochs']} | {fields['batch_size']} | {fields['learning_rate']} | {c.n_models} "
            f"| {c.repeat_spearman:.3f} | {c.spearman_params:.3f} | {c.spearman_conv3x3:.3f} "
            f"| {100 * c.p5:.1f} / {100 * c.p50:.1f} / {100 * c.p95:.1f} | {100 * c.spread_5_95:.1f} "
            f"| {c.cpu_seconds:.2f} | {'yes' if c.meets_all() else 'no'} |"
        )


if __name__ == "__main__":
    main()
