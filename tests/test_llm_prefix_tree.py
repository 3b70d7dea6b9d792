"""The one prefix-tree builder (policy prefill and PPO scoring) and the one left-padding routine."""

import random

import pytest
import torch

from moralgym.agents.llm.engine import left_pad
from moralgym.agents.llm.prefix_tree import TreeNode, prefix_levels, single_level


def _prefixes(levels):
    """Each node's full token prefix (its ancestors' tokens and its own), level by level."""
    out, previous = [], []
    for level in levels:
        current = [(previous[node.parent] if node.parent is not None else ()) + node.tokens for node in level]
        out.append(current)
        previous = current
    return out


def _random_rows(rng, count):
    base = [rng.randrange(4) for _ in range(rng.randint(0, 30))]
    rows = {
        tuple(base[: rng.randint(0, len(base))] + [rng.randrange(4) for _ in range(rng.randint(0, 6))])
        for _ in range(count)
    }
    rows.discard(())
    return sorted(rows, key=lambda _: rng.random())


@pytest.mark.parametrize("min_shared", [1, 3, 16])
def test_every_row_ends_at_one_node_whose_prefix_is_the_row(min_shared):
    rng = random.Random(min_shared)
    for _ in range(200):
        rows = _random_rows(rng, rng.randint(1, 20))
        levels = prefix_levels(rows, min_shared)
        prefixes = _prefixes(levels)
        pairs = zip(levels, prefixes, strict=True)
        ends = [(node.end, prefix) for level, full in pairs for node, prefix in zip(level, full, strict=True)]
        assert sorted(end for end, _ in ends if end is not None) == list(range(len(rows)))
        assert all(prefix == rows[end] for end, prefix in ends if end is not None)
        assert all(node.parent is None for node in levels[0])
        shared = [node for level in levels for node in level if node.end is None]
        assert all(len(node.tokens) >= min_shared for node in shared)  # short runs are repeated, not forwarded
        if min_shared == 1:  # every distinct prefix forwarded exactly once
            distinct = {row[:k] for row in rows for k in range(1, len(row) + 1)}
            assert sum(len(node.tokens) for level in levels for node in level) == len(distinct)


def test_levels_follow_the_order_of_the_rows_and_short_runs_are_carried():
    rows = [(1, 2, 3), (1, 2, 4), (1, 5), (1, 2)]
    assert prefix_levels(rows) == [
        [TreeNode(None, (1,), None)],
        [TreeNode(0, (2,), 3), TreeNode(0, (5,), 2)],
        [TreeNode(0, (3,), 0), TreeNode(0, (4,), 1)],
    ]
    backwards = prefix_levels(rows[::-1])
    assert [node.tokens for node in backwards[2]] == [(4,), (3,)]  # children follow the first row reaching them
    assert prefix_levels(rows, min_shared=2) == [
        [TreeNode(None, (1, 2), 3), TreeNode(None, (1, 5), 2)],
        [TreeNode(0, (3,), 0), TreeNode(0, (4,), 1)],
    ]


def test_deep_trees_need_no_recursion_and_bad_rows_are_refused():
    chain = [(7,) * k for k in range(1, 1501)]  # deeper than Python's default recursion limit
    levels = prefix_levels(chain)
    assert len(levels) == 1500 and all(level == [TreeNode(0 if d else None, (7,), d)] for d, level in enumerate(levels))
    assert prefix_levels([]) == []
    with pytest.raises(ValueError, match="non-empty"):
        prefix_levels([(1,), ()])
    with pytest.raises(ValueError, match="distinct"):
        prefix_levels([(1, 2), (1, 2)])
    assert single_level([[3, 4], (5,)]) == [[TreeNode(None, (3, 4), 0), TreeNode(None, (5,), 1)]]


def test_left_pad_right_aligns_rows_with_mask_and_positions():
    ids, mask, positions = left_pad([(5, 6, 7), (8,), ()], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 0]]
    assert ids.dtype == mask.dtype == positions.dtype == torch.long
