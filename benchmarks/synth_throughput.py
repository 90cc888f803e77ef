"""Figure: synthetic rows per second from ``privpipe synth``'s generator.

Anchor: the obvious way to make the same people, Faker called per row for the direct
identifiers (name, e-mail, phone, SSN, address, birth date), measured on a smaller
sample in the same run. Usage: python benchmarks/synth_throughput.py [--rows N]
"""

from __future__ import annotations

import argparse

from _common import best_of, report

from privacy.synth import synthesize


def faker_rows(n: int) -> None:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(0)
    for _ in range(n):
        (fake.name(), fake.email(), fake.phone_number(), fake.ssn(), fake.address(),
         fake.date_of_birth())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--anchor-rows", type=int, default=20_000)
    args = parser.parse_args()
    ours = best_of(2, lambda: synthesize(args.rows, seed=1))
    anchor = best_of(2, lambda: faker_rows(args.anchor_rows))
    report(
        f"synth: {args.rows:,} rows (all 19 columns)",
        args.rows / ours,
        args.anchor_rows / anchor,
        "rows/s",
        f"Faker per row, identifiers only, {args.anchor_rows:,} rows",
    )
    print(f"  time     : {ours:>14.1f} s for {args.rows:,} rows")


if __name__ == "__main__":
    main()
