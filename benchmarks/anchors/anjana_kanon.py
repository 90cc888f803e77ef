"""Anchor for benchmarks/kanon_adult.py, run in anjana's own virtual environment (anjana
pins numpy and typing-extensions below what privpipe needs, so it cannot share one).

Prints one JSON line: the seconds anjana's k_anonymity call takes (after the imports and
the reading, as the benchmark times privpipe), the records it kept, and the
discernibility of its output. Usage: python anjana_kanon.py DATA.csv HIERARCHY_DIR K SUPP% QI,QI,...
"""

import json
import sys
import time

import pandas as pd
from anjana.anonymity import k_anonymity


def main() -> None:
    data, folder, k, supp = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    qis = sys.argv[5].split(",")
    frame = pd.read_csv(data, sep=";")
    hierarchies = {
        q: dict(pd.read_csv(f"{folder}/adult_hierarchy_{q}.csv", sep=";", header=None)) for q in qis
    }
    start = time.perf_counter()
    out = k_anonymity(frame, [], qis, k, supp, hierarchies)
    seconds = time.perf_counter() - start
    sizes = out.groupby(qis).size()
    suppressed = len(frame) - len(out)
    dm = int((sizes**2).sum()) + suppressed * len(frame)
    print(json.dumps({"seconds": seconds, "rows_out": len(out), "discernibility": dm}))


if __name__ == "__main__":
    main()
