"""Full-domain generalization: the lattice, its evaluation, and the optimal search.

A node of the lattice is one level per quasi-identifier. Evaluating a node groups the
record counts by the generalized codes (an array lookup per attribute and one group-by
over the distinct combinations, never over rows), suppresses the classes that fail a
privacy model, and accepts the node when the suppressed records stay within the limit.

The search returns the accepted node that minimizes the metric, the same node an
exhaustive search returns (tested). It prunes with lower bounds that hold for a node
and every generalization of it, whatever the privacy models:

- discernibility: Σ|E|² over the node's classes without suppression. Generalizing merges
  classes (the sum of squares grows), and a suppressed class costs N·|E| ≥ |E|².
- loss and non-uniform entropy: the value without suppression, which depends only on
  the levels, grows with every level, and suppression only adds to it.
- AECS: (N - allowed suppression) / classes, since merging only lowers the class count.
- classification (Iyengar 2002, as ARX's classification utility): the share of records
  whose target value is not the majority of their class, a suppressed record counting
  as one. Without suppression: merging classes never raises the sum of their majority
  counts, and a suppressed class costs |E| >= |E| - its majority.

The sweep goes bottom-up by height; a node whose bound exceeds the best value found so
far is skipped with everything above it. A greedy descent from the top first finds a
good accepted node, so the bound prunes from the start (the idea of Flash and OLA:
monotone pruning over the lattice; here over the metric, which is what an optimum
needs, since suppression makes "accepted" itself not monotone for every model).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.errors import InputError, PolicyError, PrivacyGuaranteeError
from privacy.kanon._counts import COUNT, FIRST_ROW
from privacy.kanon._hierarchy import CodedHierarchy
from privacy.kanon._models import PrivacyModel

__all__ = ["METRICS", "Evaluation", "Lattice", "Node", "SearchResult"]

Node = tuple[int, ...]
METRICS = ("discernibility", "aecs", "loss", "entropy", "classification")
# Metric values are float sums whose order depends on which table a node's counts were
# rolled up from, so one value can come out a few 1e-12 apart along two paths. Pruning
# allows that much slack (a looser bound only prunes less), and ranking compares values
# to 12 significant digits, so a tie is a tie on every path and breaks by height.
_REL = 1e-9
_DIGITS = 12
_PARALLEL_ROWS = 200_000  # below this, a second thread costs more than it saves
_BATCH_ROWS = 500_000  # source rows rolled up in one sort (about 25 MB of arrays)
_WORKERS = min(2, os.cpu_count() or 1)


@dataclass
class ClassTable:
    """The equivalence classes at one node: per class one integer key (the attributes'
    codes at the node's levels, as digits of a mixed-radix number), its size, and where
    needed its sensitive-value histogram and, per attribute, the sum over its records of
    -log2 of the value's frequency (for the non-uniform entropy). Rolling a table up one
    level rewrites one digit, sorts, and adds up the rows that now share a key."""

    keys: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    hist: npt.NDArray[np.int64] | None = None
    info: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.sizes)


@dataclass
class Evaluation:
    """One node: its classes, which are suppressed, and whether it is accepted."""

    node: Node
    table: ClassTable
    class_ok: npt.NDArray[np.bool_]
    suppressed: int
    accepted: bool
    value: float = math.inf

    @property
    def class_sizes(self) -> npt.NDArray[np.int64]:
        return self.table.sizes

    @property
    def classes(self) -> int:
        return int(self.class_ok.sum())


@dataclass
class SearchResult:
    best: Evaluation
    metric: str
    nodes: int
    evaluated: int
    pruned: int
    stats: dict[str, float] = field(default_factory=dict)


class Lattice:
    """The generalization lattice of one data set's counts under its hierarchies."""

    # Long: the lattice's precomputed tables, built once; issue 33 reshapes this with the
    # integer-code Mondrian, so it is not split here.
    def __init__(
        self,
        counts: pl.DataFrame,
        hierarchies: Sequence[CodedHierarchy],
        models: Sequence[PrivacyModel],
        *,
        max_suppression: float,
        sensitive: str | None = None,
        sensitive_domain: Sequence[str] | None = None,
        metric: str = "discernibility",
    ) -> None:
        if metric not in METRICS:
            raise PolicyError(
                f"privacy.metric: unknown metric {metric!r} (one of {', '.join(sorted(METRICS))})"
            )
        self._args = (counts, hierarchies, models, max_suppression, sensitive, sensitive_domain)
        self.metric = metric
        self.hierarchies = list(hierarchies)
        self.models = list(models)
        self.names = [h.column for h in self.hierarchies]
        self.heights = [h.height for h in self.hierarchies]
        self.n_groups = counts.height
        self.counts = counts.get_column(COUNT).to_numpy().astype(np.int64)
        self.total = int(self.counts.sum())
        self.limit = max_suppression * self.total
        width = len(self.hierarchies)
        self.codes = (
            np.stack([_encode(counts, h) for h in self.hierarchies], axis=1)
            if width
            else np.zeros((self.n_groups, 0), dtype=np.int32)
        )
        bits = [max(1, (len(h.domain) - 1).bit_length()) for h in self.hierarchies]
        if sum(bits) > 62:
            raise InputError(
                "the quasi-identifiers have too many combinations of values for the optimal "
                "search; coarsen a hierarchy or use privacy.algorithm: mondrian"
            )
        self.shift = [sum(bits[:i]) for i in range(len(bits))]
        self.key_bits = sum(bits)
        self.key_mask = (1 << self.key_bits) - 1
        self.mask = [(1 << b) - 1 for b in bits]
        # A label is coded by its first leaf (codes stay below the domain size). Lifting
        # attribute i to a level adds, to a key, lift[i][level][its code].
        self._lift = [
            [
                (_first_leaf(h, level)[h.codes[level]] - np.arange(len(h.domain), dtype=np.int64))
                << shift
                for level in range(h.height)
            ]
            for h, shift in zip(self.hierarchies, self.shift, strict=True)
        ]
        # the classification metric reads the target's histogram (the sensitive column's)
        self.needs_histogram = metric == "classification" or any(
            m.needs_histogram for m in self.models
        )
        self.smallest = max((m.min_class_size() for m in self.models), default=1)
        self.sensitive: npt.NDArray[np.int64] | None = None
        self.sensitive_domain: list[str] = []
        if sensitive is not None:
            self._encode_sensitive(counts, sensitive, sensitive_domain)
        elif self.needs_histogram:
            raise InputError(
                "l-diversity, t-closeness and the classification metric need a column "
                "with role 'sensitive'"
            )
        self._freq = [
            np.bincount(self.codes[:, i], weights=self.counts, minlength=len(h.domain))
            for i, h in enumerate(self.hierarchies)
        ]
        # per attribute and level, per label: the loss of one cell generalized to it
        self._label_loss = [
            [_label_loss(h, level) for level in range(h.height)] for h in self.hierarchies
        ]
        # per attribute and level, per label: log2 of the records under it
        self._label_log = [
            [
                np.log2(
                    np.maximum(
                        np.bincount(
                            h.codes[level], weights=self._freq[i], minlength=h.cardinality(level)
                        ),
                        1,
                    )
                )
                for level in range(h.height)
            ]
            for i, h in enumerate(self.hierarchies)
        ]
        # per attribute and level: level-0 code -> label code (keys hold a label's first leaf)
        self._leaf_label = [h.codes for h in self.hierarchies]
        self.base = self._base_table()
        self._level_sums = [  # per attribute and level: Σ over records of the cell figure
            [self._cell_sum(i, level) for level in range(h.height)]
            for i, h in enumerate(self.hierarchies)
        ]

    def with_metric(self, metric: str) -> Lattice:
        """The same lattice, measuring with another metric."""
        counts, hierarchies, models, limit, sensitive, domain = self._args
        return Lattice(
            counts,
            hierarchies,
            models,
            max_suppression=limit,
            sensitive=sensitive,
            sensitive_domain=domain,
            metric=metric,
        )

    def _encode_sensitive(
        self, counts: pl.DataFrame, sensitive: str, domain: Sequence[str] | None
    ) -> None:
        values = counts.get_column(sensitive)
        ordered = (
            list(domain) if domain is not None else sorted(values.drop_nulls().unique().to_list())
        )
        known = values.is_in(ordered).fill_null(False)
        if not known.all():
            first = int(counts.get_column(FIRST_ROW).filter(~known).min())  # type: ignore[arg-type]
            raise InputError(
                f"column {sensitive!r} row {first + 1}: value empty or missing from its hierarchy"
            )
        index = {v: i for i, v in enumerate(ordered)}
        self.sensitive = np.array([index[v] for v in values.to_list()], dtype=np.int64)
        self.sensitive_domain = ordered

    def _base_table(self) -> ClassTable:
        """The classes at the bottom node: the distinct combinations of level-0 codes
        (the counts may also be split by sensitive value)."""
        keys = np.zeros(self.n_groups, dtype=np.int64)
        for i, shift in enumerate(self.shift):
            keys |= self.codes[:, i].astype(np.int64) << shift
        rows = ClassTable(keys, self.counts)
        if self.needs_histogram:
            assert self.sensitive is not None
            width = len(self.sensitive_domain)
            # int32: a class's records fit (fewer than 2**31 rows), at half the memory of
            # int64; these tables are the search's largest arrays (groups x values)
            rows.hist = np.zeros((self.n_groups, width), dtype=np.int32, order="F")
            rows.hist[np.arange(self.n_groups), self.sensitive] = self.counts
        if self.metric == "entropy":
            rows.info = np.stack(
                [
                    -np.log2(np.maximum(self._freq[i][self.codes[:, i]], 1)) * self.counts
                    for i in range(len(self.hierarchies))
                ],
                axis=1,
            )
        table, order, starts = _merge(rows)
        self.group_to_base = _inverse(order, starts)
        return table

    def digits(self, keys: npt.NDArray[np.int64], i: int) -> npt.NDArray[np.int64]:
        """Attribute ``i``'s code in each key."""
        return np.asarray((keys >> self.shift[i]) & self.mask[i])

    # ------------------------------------------------------------------ nodes

    def nodes(self) -> list[Node]:
        return sorted(
            itertools.product(*(range(h) for h in self.heights)), key=lambda n: (sum(n), n)
        )

    @property
    def bottom(self) -> Node:
        return tuple(0 for _ in self.heights)

    @property
    def top(self) -> Node:
        return tuple(h - 1 for h in self.heights)

    def predecessors(self, node: Node) -> list[Node]:
        return [(*node[:i], v - 1, *node[i + 1 :]) for i, v in enumerate(node) if v > 0]

    def successors(self, node: Node) -> list[Node]:
        return [
            (*node[:i], v + 1, *node[i + 1 :])
            for i, v in enumerate(node)
            if v + 1 < self.heights[i]
        ]

    # ------------------------------------------------------------------ evaluation

    def table(self, node: Node, source: tuple[Node, ClassTable] | None = None) -> ClassTable:
        """The classes at ``node``, rolled up from ``source`` (a node below it and its
        table) or else from the bottom."""
        return self._roll_up(node, source)[1]

    def _roll_up(
        self, node: Node, source: tuple[Node, ClassTable] | None
    ) -> tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None, ClassTable]:
        """(how rows merged: sort order and run starts, or None if nothing merged; the
        table at ``node``)."""
        start, table = source if source is not None else (self.bottom, self.base)
        keys = table.keys
        for i, (low, high) in enumerate(zip(start, node, strict=True)):
            if high != low:
                keys = keys + self._lift[i][high][(keys >> self.shift[i]) & self.mask[i]]
        keys = keys & self.key_mask  # tables rolled up together carry an index above
        if np.array_equal(keys, table.keys):
            return None, table
        merged, order, starts = _merge(ClassTable(keys, table.sizes, table.hist, table.info))
        return (order, starts), merged

    def _tables(
        self, todo: Sequence[tuple[Node, tuple[Node, ClassTable] | None]]
    ) -> dict[Node, ClassTable]:
        """The tables of many nodes at once: each rolled up from its source, then one
        sort and one sum for all of them (the node's index in the high bits of the key),
        which saves the fixed cost of a dozen array calls per node."""
        if len(todo) < 2 or self.key_bits + max(len(todo) - 1, 1).bit_length() > 62:
            return {node: self.table(node, source) for node, source in todo}
        parts, sizes, hists, infos = [], [], [], []
        for index, (node, source) in enumerate(todo):
            start, table = source if source is not None else (self.bottom, self.base)
            keys = table.keys  # tables hold plain keys: no index bits
            for i, (low, high) in enumerate(zip(start, node, strict=True)):
                if high != low:
                    keys = keys + self._lift[i][high][(keys >> self.shift[i]) & self.mask[i]]
            if keys is table.keys:
                keys = keys.copy()
            keys |= index << self.key_bits
            parts.append(keys)
            sizes.append(table.sizes)
            hists.append(table.hist)
            infos.append(table.info)
        index_bits = max(len(todo) - 1, 1).bit_length()
        size_bits = max(self.total, 1).bit_length()
        if hists[0] is None and infos[0] is None and (self.key_bits + index_bits + size_bits <= 63):
            merged = _merge_packed(np.concatenate(parts), np.concatenate(sizes), size_bits)
        else:
            stacked = ClassTable(
                np.concatenate(parts),
                np.concatenate(sizes),
                None if hists[0] is None else _stack_columns(hists),
                None if infos[0] is None else _stack_columns(infos),
            )
            merged, _, _ = _merge(stacked)
        owner = merged.keys >> self.key_bits
        bounds = np.searchsorted(owner, np.arange(len(todo) + 1))
        merged.keys &= self.key_mask
        out = {}
        for index, (node, _) in enumerate(todo):
            a, b = int(bounds[index]), int(bounds[index + 1])
            out[node] = ClassTable(
                merged.keys[a:b],
                merged.sizes[a:b],
                None if merged.hist is None else merged.hist[a:b],
                None if merged.info is None else merged.info[a:b],
            )
        return out

    def _tables_parallel(
        self, todo: Sequence[tuple[Node, tuple[Node, ClassTable] | None]]
    ) -> dict[Node, ClassTable]:
        """:meth:`_tables` in batches of at most ``_BATCH_ROWS`` source rows (memory stays
        bounded however large the counts), two batches at a time on two threads when there
        is enough to count: numpy's sorts, gathers and sums release the GIL."""
        batches: list[list[tuple[Node, tuple[Node, ClassTable] | None]]] = [[]]
        rows = 0
        total = 0
        for item in todo:
            size = len(item[1][1]) if item[1] is not None else len(self.base)
            if batches[-1] and rows + size > _BATCH_ROWS:
                batches.append([])
                rows = 0
            batches[-1].append(item)
            rows += size
            total += size
        if total < _PARALLEL_ROWS or _WORKERS < 2:
            out: dict[Node, ClassTable] = {}
            for batch in batches:
                out |= self._tables(batch)
            return out
        if len(batches) == 1:  # split one batch in two to use both threads
            half = len(todo) // 2
            batches = [list(todo[:half]), list(todo[half:])]
        out = {}
        with ThreadPoolExecutor(_WORKERS) as pool:
            for part in pool.map(self._tables, batches):
                out |= part
        return out

    def group_classes(self, node: Node) -> tuple[npt.NDArray[np.int64], ClassTable]:
        """Per row of the counts, its class at ``node``; and the classes."""
        how, table = self._roll_up(node, None)
        base = self.group_to_base
        return (base if how is None else _inverse(*how)[base]), table

    def evaluate(
        self, node: Node, table: ClassTable | None = None, *, measure: bool = True
    ) -> Evaluation:
        table = table if table is not None else self.table(node)
        ok = np.ones(len(table), dtype=bool)
        for model in self.models:
            ok &= model.satisfied(table.sizes, table.hist)
        suppressed = int(table.sizes[~ok].sum())
        evaluation = Evaluation(node, table, ok, suppressed, suppressed <= self.limit + 1e-9)
        if evaluation.accepted and measure:
            evaluation.value = self.metric_value(evaluation)
        return evaluation

    # ------------------------------------------------------------------ metrics

    def _cell_sum(self, i: int, level: int) -> float:
        h = self.hierarchies[i]
        if self.metric == "entropy":
            per_value = self._label_log[i][level][h.codes[level]] - np.log2(
                np.maximum(self._freq[i], 1)
            )
        else:
            per_value = self._label_loss[i][level][h.codes[level]]
        return float(per_value @ self._freq[i])

    def metric_value(self, e: Evaluation) -> float:
        t = e.table
        kept = e.class_ok
        if self.metric == "discernibility":
            return float((t.sizes[kept] ** 2).sum() + e.suppressed * self.total)
        if self.metric == "aecs":
            classes = int(kept.sum())
            return (self.total - e.suppressed) / classes if classes else math.inf
        if self.metric == "classification":
            assert t.hist is not None
            majority = t.hist[kept].max(axis=1).astype(np.int64).sum() if kept.any() else 0
            return float(self.total - majority) / max(self.total, 1)
        attributes = len(e.node)
        if self.metric == "loss":  # suppressed cells lose everything: 1 each
            value = float(e.suppressed * attributes)
            for i, level in enumerate(e.node):
                labels = self._leaf_label[i][level][self.digits(t.keys[kept], i)]
                value += float(self._label_loss[i][level][labels] @ t.sizes[kept])
            return value / (self.total * max(attributes, 1))
        assert t.info is not None  # entropy: Σ -log2 f(v) + |E| log2 f(label)
        value = 0.0
        for i, level in enumerate(e.node):
            logs = np.where(
                kept,
                self._label_log[i][level][self._leaf_label[i][level][self.digits(t.keys, i)]],
                math.log2(max(self.total, 1)),
            )
            value += float(t.info[:, i].sum() + logs @ t.sizes)
        return value

    def measures(self, node: Node) -> dict[str, float]:
        """Every metric of ``node``, from the records themselves (per row of the counts),
        whatever metric this lattice searches with."""
        classes, table = self.group_classes(node)
        e = self.evaluate(node, table, measure=False)
        kept_rows = e.class_ok[classes]
        kept = e.class_ok
        total, attributes = self.total, max(len(node), 1)
        loss = float(e.suppressed * len(node))
        entropy = 0.0
        for i, (h, level) in enumerate(zip(self.hierarchies, node, strict=True)):
            labels = h.codes[level][self.codes[:, i]]
            per_row = self._label_loss[i][level][labels]
            loss += float(per_row[kept_rows] @ self.counts[kept_rows])
            own = np.log2(np.maximum(self._freq[i][self.codes[:, i]], 1))
            label_log = np.where(kept_rows, self._label_log[i][level][labels], np.log2(total))
            entropy += float((label_log - own) @ self.counts)
        classes_kept = int(kept.sum())
        figures = {
            "discernibility": float((table.sizes[kept] ** 2).sum() + e.suppressed * total),
            "aecs": (total - e.suppressed) / classes_kept if classes_kept else math.inf,
            "loss": loss / (total * attributes),
            "entropy": entropy,
        }
        if self.metric == "classification" and table.hist is not None:
            majority = int(table.hist[kept].max(axis=1).astype(np.int64).sum()) if kept.any() else 0
            figures["classification"] = (total - majority) / max(total, 1)
        return figures

    def bound(self, node: Node, table: ClassTable | None) -> float:
        """A lower bound of the metric at ``node`` and at every generalization of it
        (``table``: the node's classes, where counted)."""
        sizes = None if table is None else table.sizes
        if self.metric == "loss":
            cells = sum(self._level_sums[i][level] for i, level in enumerate(node))
            return cells / (self.total * max(len(node), 1))
        if self.metric == "entropy":
            return sum(self._level_sums[i][level] for i, level in enumerate(node))
        if sizes is None or table is None:
            return -math.inf
        if self.metric == "classification":
            assert table.hist is not None  # every record off its class's majority, kept
            majority = int(table.hist.max(axis=1).astype(np.int64).sum()) if len(sizes) else 0
            return float(self.total - majority) / max(self.total, 1)
        if self.metric == "discernibility":
            # a record of a class of size s ends, above, in an accepted class of at least
            # max(s, smallest) records or suppressed (costing N >= that): s*max(s, smallest)
            return float((sizes * np.maximum(sizes, self.smallest)).sum())
        return (self.total - self.limit) / len(sizes) if len(sizes) else math.inf

    # ------------------------------------------------------------------ search

    # Long: one search loop (OLA-style pruning), kept whole; see issue 33.
    def optimal(self, progress: Callable[[int, int], None] | None = None) -> SearchResult:
        """The accepted node with the lowest metric (ties: lower height, then levels)."""
        nodes = self.nodes()
        best: Evaluation | None = None
        evaluated = 0
        skipped = 0

        def better(e: Evaluation) -> bool:
            return e.accepted and (best is None or _rank(e) < _rank(best))

        possible = self._projection_filter()  # the nodes worth counting, or None: all
        candidates = nodes if possible is None else [n for n in nodes if n in possible]
        if not candidates:
            raise _nothing_accepted()
        # Every node that can be accepted lies above the candidates' lowest levels: count
        # from that node's table, not from the bottom's, where no nearer one is counted.
        floor = tuple(min(levels) for levels in zip(*candidates, strict=True))
        floor_source = (floor, self.table(floor))

        # a greedy descent from the top finds a good accepted node to prune with
        current = self.evaluate(self.top)
        evaluated += 1
        if current.accepted:
            best = current
            while True:
                below = [
                    p for p in self.predecessors(current.node) if possible is None or p in possible
                ]
                batch = self._tables([(p, floor_source) for p in below])
                steps = [self.evaluate(p, batch[p]) for p in below]
                evaluated += len(steps)
                accepted = [s for s in steps if s.accepted]
                if not accepted:
                    break
                current = min(accepted, key=_rank)
                if better(current):
                    best = current
        pruned: set[Node] = set()
        tables: dict[Node, ClassTable] = {}  # the previous height only
        layers: dict[int, list[Node]] = {}
        for node in nodes:
            layers.setdefault(sum(node), []).append(node)
        done = 0
        for height in sorted(layers):
            todo: list[tuple[Node, tuple[Node, ClassTable] | None]] = []
            for node in layers[height]:
                below = self.predecessors(node)
                if any(p in pruned for p in below) or (
                    best is not None and _exceeds(self.bound(node, None), best.value)
                ):
                    pruned.add(node)
                    continue
                if possible is not None and node not in possible:
                    skipped += 1
                    continue
                sources = [(p, tables[p]) for p in below if p in tables]
                todo.append(
                    (node, min(sources, key=lambda item: len(item[1])) if sources else floor_source)
                )
            tables = self._tables_parallel(todo)
            for node, _ in todo:
                table = tables[node]
                e = self.evaluate(node, table)
                evaluated += 1
                if best is not None and _exceeds(self.bound(node, table), best.value):
                    pruned.add(node)  # nothing above it can do better; it may be the best
                if better(e):
                    best = e
            done += len(layers[height])
            if progress is not None:
                progress(done, len(nodes))
        if progress is not None:
            progress(len(nodes), len(nodes))
        if best is None:
            raise _nothing_accepted()
        return SearchResult(
            best,
            self.metric,
            len(nodes),
            evaluated,
            len(pruned),
            {"rejected_by_projection": skipped},
        )

    def _projection_filter(self) -> set[Node] | None:
        """For monotone models, a necessary condition for a node to be accepted, checked
        without counting it: Incognito's subset property (LeFevre, DeWitt, Ramakrishnan
        2005). The node with only some attributes kept as they are and the others at the
        top is a generalization of it; if that node fails, so does the node. Three
        overlapping groups of about 5/8 of the attributes are swept first, each over its
        own small sub-lattice (whose tables are small), and recursively so."""
        if not all(m.monotone for m in self.models):
            return None
        everything = list(range(len(self.heights)))
        possible = self._subset_filter(everything, (self.bottom, self.base))
        if possible is None:
            return None
        nodes = self.nodes()
        mask = possible(np.array(nodes, dtype=np.int64).reshape(len(nodes), -1))
        return {n for n, ok in zip(nodes, mask, strict=True) if ok}

    _windows = 3

    @staticmethod
    def _subset_size(size: int) -> int:
        return size - -(-size // 3)  # 8 -> 5, 5 -> 3, 4 -> 2

    def _subset_filter(
        self, group: list[int], source: tuple[Node, ClassTable]
    ) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]] | None:
        """A vectorized test over nodes (rows of levels): False where a generalization
        keeping only a subgroup of ``group`` is known to fail (see _projection_filter)."""
        size = len(group)
        if size < 4:
            return None
        keep = self._subset_size(size)
        starts = sorted({round(j * size / self._windows) for j in range(self._windows)})
        subgroups = [sorted(group[(s + j) % size] for j in range(keep)) for s in starts]
        lookups = []
        for sub in subgroups:
            table = np.zeros([self.heights[i] for i in sub], dtype=bool)
            for levels in self._accepted_levels(sub, source):
                table[levels] = True
            lookups.append((sub, table))

        def possible(nodes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            ok = np.ones(len(nodes), dtype=bool)
            for sub, table in lookups:
                ok &= table[tuple(nodes[:, i] for i in sub)]
            return ok

        return possible

    def _accepted_levels(
        self, group: list[int], source: tuple[Node, ClassTable]
    ) -> set[tuple[int, ...]]:
        """The levels of ``group``'s attributes (the others at the top) that are
        accepted, by a bottom-up sweep of that sub-lattice: a node above an accepted one
        is accepted without counting (monotone); one that fails a smaller group's check is
        rejected without counting; the rest are counted, a height at a time."""
        top = self.top

        def full(levels: tuple[int, ...]) -> Node:
            node = list(top)
            for i, level in zip(group, levels, strict=True):
                node[i] = level
            return tuple(node)

        bottom = full(tuple(0 for _ in group))
        base_table = self._tables([(bottom, source)])[bottom]
        possible = self._subset_filter(group, (bottom, base_table))
        passed: set[tuple[int, ...]] = set()
        tables: dict[Node, ClassTable] = {bottom: base_table}
        layers: dict[int, list[tuple[int, ...]]] = {}
        for levels in itertools.product(*(range(self.heights[i]) for i in group)):
            layers.setdefault(sum(levels), []).append(levels)
        for height in sorted(layers):
            todo: list[tuple[Node, tuple[Node, ClassTable] | None]] = []
            layer = layers[height]
            allowed = (
                possible(np.array([full(levels) for levels in layer], dtype=np.int64))
                if possible is not None
                else np.ones(len(layer), dtype=bool)
            )
            for levels, ok in zip(layer, allowed, strict=True):
                below = [(*levels[:j], v - 1, *levels[j + 1 :]) for j, v in enumerate(levels) if v]
                if any(b in passed for b in below):
                    passed.add(levels)  # above an accepted node: accepted (monotone)
                    continue
                node = full(levels)
                if not ok:
                    continue
                if node in tables:
                    todo.append((node, (node, tables[node])))
                    continue
                sources = [(full(b), tables[full(b)]) for b in below if full(b) in tables]
                chosen = min(sources, key=lambda item: len(item[1])) if sources else None
                todo.append((node, chosen if chosen is not None else source))
            tables = self._tables(todo)
            for node, _ in todo:
                if self.evaluate(node, tables[node], measure=False).accepted:
                    passed.add(tuple(node[i] for i in group))
        return passed

    def exhaustive(self) -> SearchResult:
        """Every node evaluated from the bottom: the reference for :meth:`optimal`."""
        nodes = self.nodes()
        accepted = [e for e in (self.evaluate(n) for n in nodes) if e.accepted]
        if not accepted:
            raise _nothing_accepted()
        return SearchResult(min(accepted, key=_rank), self.metric, len(nodes), len(nodes), 0)


def _label_loss(h: CodedHierarchy, level: int) -> npt.NDArray[np.float64]:
    """Per label at ``level``: (values under it - 1) / (domain size - 1)."""
    size = len(h.domain)
    under = np.bincount(h.codes[level], minlength=h.cardinality(level))
    return (under - 1) / (size - 1) if size > 1 else np.zeros(h.cardinality(level))


def _first_leaf(h: CodedHierarchy, level: int) -> npt.NDArray[np.int64]:
    """For each label at ``level``, one level-0 code under it."""
    first = np.zeros(h.cardinality(level), dtype=np.int64)
    first[h.codes[level][::-1]] = np.arange(len(h.domain) - 1, -1, -1)
    return first


def _merge(
    table: ClassTable,
) -> tuple[ClassTable, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows of ``table`` that share a key added up: (new table, sort order, run starts).

    Keys are sorted with a stable sort: hierarchies number their leaves so that every
    label's leaves are contiguous, so lifting one attribute keeps most of a sorted table
    in order and the sort merges a few sorted runs."""
    order = np.argsort(table.keys, kind="stable")
    keys = table.keys[order]
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)

    merged = ClassTable(keys[starts], _add(table.sizes, order, starts, len(keys)))
    if table.hist is not None:
        merged.hist = _add(table.hist, order, starts, len(keys))
    if table.info is not None:
        merged.info = _add(table.info, order, starts, len(keys))
    return merged, order, starts


def _merge_packed(
    keys: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64], size_bits: int
) -> ClassTable:
    """:func:`_merge` for a table of keys and sizes only: each size packed into the low
    bits below its key, so one sort of one array does what a sort, and gathers of the
    keys and sizes by its order, would."""
    packed = np.sort((keys << size_bits) | sizes)  # SIMD quicksort: no order to keep
    keys = packed >> size_bits
    sizes = packed & ((1 << size_bits) - 1)
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return ClassTable(keys[starts], _add(sizes, slice(None), starts, len(keys)))


def _add(values: Any, order: Any, starts: Any, rows: int) -> Any:
    """Rows of ``values`` (in sort ``order``) summed per run of equal keys. A 2-D array
    (histograms) is summed a column at a time: they are kept column-major, so each
    column is contiguous (reduceat along rows of a row-major array is ten times slower)."""
    if values.ndim == 2:
        out = np.empty((len(starts), values.shape[1]), dtype=values.dtype, order="F")
        for j in range(values.shape[1]):
            out[:, j] = _add(values[:, j], order, starts, rows)
        return out
    ordered = values[order]
    if len(starts) == rows:
        return ordered
    if rows > 4096:  # a running sum read at run ends beats reduceat
        ends = np.cumsum(ordered)
        totals = ends[np.append(starts[1:], rows) - 1]
        totals[1:] -= totals[:-1].copy()
        return totals
    return np.add.reduceat(ordered, starts, axis=0)


def _stack_columns(parts: list[Any]) -> Any:
    """Row blocks concatenated into one column-major array (see :func:`_add`)."""
    width = parts[0].shape[1]
    out = np.empty((sum(len(p) for p in parts), width), dtype=parts[0].dtype, order="F")
    for j in range(width):
        out[:, j] = np.concatenate([p[:, j] for p in parts])
    return out


def _inverse(order: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """For each row before a merge, its row after it."""
    run = np.zeros(len(order), dtype=np.int64)
    run[starts[1:]] = 1
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(run)
    return inverse


def _rank(e: Evaluation) -> tuple[float, int, Node]:
    return (float(f"{e.value:.{_DIGITS}g}"), sum(e.node), e.node)


def _exceeds(bound: float, best: float) -> bool:
    return bound > best + abs(best) * _REL + _REL


def _nothing_accepted() -> PrivacyGuaranteeError:
    return PrivacyGuaranteeError(
        "anonymize: no generalization satisfies the privacy models within "
        "privacy.max_suppression; nothing was published",
        guarantee="anonymity",
        required="k, l, t within privacy.max_suppression",
        achieved="no node",
    )


def _encode(counts: pl.DataFrame, h: CodedHierarchy) -> npt.NDArray[np.int32]:
    """Level-0 codes of a quasi-identifier's values; a value the hierarchy lacks is an
    error naming the column and the first row that holds it (never the value)."""
    values = counts.get_column(h.column)
    codes = values.replace_strict(
        h.domain, list(range(len(h.domain))), default=None, return_dtype=pl.Int32
    )
    if codes.null_count():
        missing = codes.is_null()
        rows = counts.get_column(FIRST_ROW).filter(missing)
        what = "empty" if values.filter(missing).null_count() else "missing from its hierarchy"
        raise InputError(f"column {h.column!r} row {int(rows.min()) + 1}: value {what}")  # type: ignore[arg-type]
    return codes.to_numpy().astype(np.int32)
