"""The forward engine's LM head: kept positions reach it as one contiguous matrix (one matrix product)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from moralgym.agents.llm.engine import ForwardEngine, last_positions, left_pad  # noqa: E402
from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.training.model import score_contexts  # noqa: E402


def lm_head_inputs(model):
    """Record every input the LM head sees while the returned list is alive."""
    seen: list[torch.Tensor] = []
    handle = model.get_output_embeddings().register_forward_hook(lambda module, args, out: seen.append(args[0]))
    return seen, handle


def test_last_positions_index_the_end_of_the_rows():
    ids = torch.zeros((3, 7), dtype=torch.long)
    assert last_positions(ids).tolist() == [6]
    assert last_positions(ids, 3).tolist() == [4, 5, 6]


def test_the_lm_head_gets_a_contiguous_matrix_with_the_same_logits():
    # transformers slices an int logits_to_keep (hidden[:, -1:]), a view torch's matmul multiplies row by row with a
    # copy of the LM head's weight per row (docs/benchmarks.md, "The LM head"); the engine passes indices.
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    model.eval()
    ids, mask, positions = left_pad([[5, 6, 7, 8, 9], [10, 11, 12]], tokenizer.pad_token_id)
    engine = ForwardEngine(model, tokenizer.pad_token_id)
    seen, handle = lm_head_inputs(model)
    with torch.no_grad():
        logits, _ = engine.forward(ids, mask, positions, use_cache=False)
        full = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1].float()
    handle.remove()
    assert seen[0].shape[:2] == (2, 1) and seen[0].is_contiguous()
    torch.testing.assert_close(logits, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tree_attention", [True, False])
def test_training_passes_give_the_lm_head_contiguous_matrices(tree_attention):
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    seen, handle = lm_head_inputs(model)
    with torch.no_grad():
        for dedup in (True, False):  # the level layout (tree_attention False) and the per-sample path (dedup False)
            score_contexts(
                model, [[5, 6, 7], [5, 6, 8, 9]], [[3, 4], [3, 5]], dedup=dedup, tree_attention=tree_attention
            )
    handle.remove()
    assert seen and all(x.is_contiguous() for x in seen)
