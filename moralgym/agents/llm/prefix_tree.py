"""The prefix tree of a batch of token rows, as levels of nodes to forward one pass per level.

Prompts of a batch share most of their tokens (chat header, rules, a game's payoff table), so forwarding each run
of shared tokens once, on top of the KV cache of the run before it, costs the tokens of the tree rather than the
sum of the rows (docs/llm_speed.md). Both the sampling policy (:mod:`moralgym.agents.llm.decoding`) and the
PPO update's scoring (:func:`moralgym.training.model.tree_forward`) build their trees here.

The nodes of a level come in the order of the rows: children follow the first row that reaches them. The order
matters only for bit-for-bit reproducibility (a batched forward's rounding may depend on where a row sits), so each
caller keeps the order it always had: the policy passes sorted rows, the scorer its contexts as they come.

:func:`flat_tree` lays the same tree out as ONE row of distinct tokens with an ancestor mask (tree attention): the
PPO update's gradient pass forwards it without copying any parent's KV cache into its children's rows, which is
what the level layout's memory is made of (docs/benchmarks.md, "Memory of the quick start").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FlatTree", "TreeNode", "flat_tree", "prefix_levels", "single_level"]


@dataclass(frozen=True)
class TreeNode:
    """A run of tokens, forwarded on top of the KV row of node ``parent`` of the level before (None at level 0).

    ``end`` is the index of the input row that ends with this node (its next-token distribution is this node's
    last one), or None for a run shared by several rows that goes on below it.
    """

    parent: int | None
    tokens: tuple[int, ...]
    end: int | None


def prefix_levels(rows: Sequence[Sequence[int]], min_shared: int = 1) -> list[list[TreeNode]]:
    """The prefix tree of distinct, non-empty ``rows``, level by level (level ``d`` is forwarded after ``d - 1``).

    A node is a run of tokens shared by all rows below it; it ends where they differ, or where one of them ends
    (that row's node). A shared run shorter than ``min_shared`` tokens is not worth a pass of its own and is
    repeated at the start of each child instead. With ``min_shared=1`` every distinct token-prefix of the rows is
    forwarded exactly once.

    Raises:
        ValueError: a row is empty (there is no next-token distribution to compute) or repeated.
    """
    rows = [tuple(row) for row in rows]
    if any(not row for row in rows):
        raise ValueError("a prefix tree needs non-empty rows")
    if len(set(rows)) != len(rows):
        raise ValueError("a prefix tree needs distinct rows")
    # In sorted order the rows below any node are a contiguous range, whose shared prefix is that of its first and
    # last rows, and a row that ends at the node (a prefix of the others) comes first.
    order = sorted(range(len(rows)), key=rows.__getitem__)
    levels: list[list[TreeNode]] = []
    # Depth-first with an explicit stack (trees can be deeper than Python's recursion limit), children in row
    # order, so that appending each node to its level gives every level in row order. Each entry: the sorted range
    # of rows below, the tokens they all share, the tokens carried from a run too short for a node, parent, depth.
    stack: list[tuple[int, int, int, tuple[int, ...], int | None, int]] = [(0, len(rows), 0, (), None, 0)]
    while rows and stack:
        lo, hi, start, carried, parent, depth = stack.pop()
        if depth == len(levels):
            levels.append([])
        first = rows[order[lo]]
        if hi - lo == 1:
            levels[depth].append(TreeNode(parent, carried + first[start:], order[lo]))
            continue
        last = rows[order[hi - 1]]
        end, limit = start, min(len(first), len(last))
        while end < limit and first[end] == last[end]:
            end += 1
        terminal = len(first) == end
        segment = carried + first[start:end]
        if terminal or (segment and len(segment) >= min_shared):
            levels[depth].append(TreeNode(parent, segment, order[lo] if terminal else None))
            parent, depth, carried = len(levels[depth]) - 1, depth + 1, ()
        else:
            carried = segment
        children = _children(rows, order, lo + 1 if terminal else lo, hi, end)
        stack.extend((i, j, end, carried, parent, depth) for i, j in reversed(children))
    return levels


def _children(rows: list[tuple[int, ...]], order: list[int], lo: int, hi: int, end: int) -> list[tuple[int, int]]:
    """The sorted ranges of ``order[lo:hi]`` that share their token at ``end``, ordered by their first row."""
    children: list[tuple[int, int, int]] = []  # (first row of the child in row order, its sorted range)
    i = lo
    while i < hi:
        token, j, earliest = rows[order[i]][end], i, order[i]
        while j < hi and rows[order[j]][end] == token:
            earliest = min(earliest, order[j])
            j += 1
        children.append((earliest, i, j))
        i = j
    return [(i, j) for _, i, j in sorted(children)]


def single_level(rows: Sequence[Sequence[int]]) -> list[list[TreeNode]]:
    """Every row whole, as one level: no sharing (for rows that must not have padding between their tokens)."""
    return [[TreeNode(None, tuple(row), index) for index, row in enumerate(rows)]]


@dataclass(frozen=True)
class FlatTree:
    """The distinct token-prefixes of some rows as one sequence: token ``i`` is ``tokens[i]``, at position
    ``positions[i]`` (its depth in the tree), under the token ``parents[i]`` (-1 at the root). A parent always comes
    before its children, and ``ends[r]`` is the index of row ``r``'s last token."""

    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    positions: tuple[int, ...]
    ends: tuple[int, ...]

    def ancestor_mask(self) -> np.ndarray:
        """``(T, T)`` bool: ``mask[i, j]`` iff token ``j`` is token ``i`` or one of its ancestors, i.e. exactly the
        tokens that precede ``i`` in its own row. Attention under this mask gives every token the same keys, at the
        same positions, as forwarding its row alone."""
        size = len(self.tokens)
        parents = np.asarray(self.parents, dtype=np.int64)
        mask = np.eye(size, dtype=bool)
        # Parents come first, so each row of the mask is its parent's row plus itself: one pass in order.
        for i in np.flatnonzero(parents >= 0):
            mask[i] |= mask[parents[i]]
        return mask


def flat_tree(rows: Sequence[Sequence[int]]) -> FlatTree:
    """The prefix tree of non-empty ``rows`` (repeats allowed), one node per distinct token-prefix, in the order the
    rows first reach them."""
    children: list[dict[int, int]] = [{}]  # children[node + 1]: token -> node; entry 0 is the root's
    tokens: list[int] = []
    parents: list[int] = []
    positions: list[int] = []
    ends: list[int] = []
    for row in rows:
        if not len(row):
            raise ValueError("a prefix tree needs non-empty rows")
        node = -1
        for token in row:
            below = children[node + 1]
            if token not in below:
                below[token] = len(tokens)
                tokens.append(int(token))
                parents.append(node)
                positions.append(positions[node] + 1 if node >= 0 else 0)
                children.append({})
            node = below[token]
        ends.append(node)
    return FlatTree(tuple(tokens), tuple(parents), tuple(positions), tuple(ends))
