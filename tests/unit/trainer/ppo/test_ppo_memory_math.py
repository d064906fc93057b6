"""The pieces that bound memory at scale, against plain computations: chunked log-probabilities,
token-budget micro batches, the learning-rate schedule."""

import itertools
import math

import pytest
import torch
from limr_trainer.ppo import core
from limr_trainer.ppo.batch import plan_micro_batches


def test_chunked_logprobs_equal_the_full_computation_and_their_gradients_too():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(3, 37, 16, requires_grad=True)
    tokens = torch.randint(0, 50, (3, 37))
    full = torch.log_softmax(head(hidden).float(), -1).gather(-1, tokens[..., None])[..., 0]
    (g_full,) = torch.autograd.grad(full.sum(), hidden)
    chunked, ent = core.chunked_logprobs(hidden, head, tokens, chunk=8, entropy=True, checkpoint=True)
    (g_chunk,) = torch.autograd.grad(chunked.sum(), hidden)
    assert torch.allclose(full, chunked, atol=1e-6) and torch.allclose(g_full, g_chunk, atol=1e-6)
    assert torch.allclose(ent, core.entropy_from_logits(head(hidden)), atol=1e-5)


def test_micro_batches_group_similar_lengths_within_rows_and_token_budget():
    lengths = [10, 300, 12, 290, 11, 295]
    plans = plan_micro_batches(lengths, max_rows=4)
    assert plans == [[1, 5, 3, 2], [4, 0]]  # longest first, at most 4 rows
    budgeted = plan_micro_batches(lengths, max_rows=4, max_tokens=600)
    assert budgeted == [[1, 5], [3, 2], [4, 0]]  # 2 x 300 fits 600; a third row would not
    assert sorted(i for p in budgeted for i in p) == list(range(6))
    assert plan_micro_batches([5000], max_rows=4, max_tokens=100) == [[0]]  # one over-long row still runs
    with pytest.raises(ValueError):
        plan_micro_batches([1], max_rows=0)


def test_token_normalised_losses_add_up_to_the_batch_mean():
    x, mask = torch.arange(12.0).reshape(3, 4), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0]]).float()
    whole = core.masked_mean(x, mask)
    parts = sum(core.token_normalized(x[i:i + 1], mask[i:i + 1], mask.sum()) for i in range(3))
    assert parts.item() == pytest.approx(whole.item())


def test_warmup_then_cosine_to_the_floor():
    lr = [core.warmup_cosine(s, warmup=10, total=110, floor=0.1) for s in range(111)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)  # linear warm-up over 10 steps
    assert lr[10] == pytest.approx(1.0) and lr[60] == pytest.approx(0.55) and lr[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(lr[10:]))
    assert core.warmup_cosine(50, 10, 110, 0.1, "constant") == 1.0
    assert math.isclose(core.warmup_cosine(0, 0, 1, 0.5), 1.0)


def test_a_rank_reads_back_the_model_states_and_only_its_own_zero_shard():
    from limr_trainer.ppo.checkpoint_stream import files_for_rank

    keys = ["p/ds/mp_rank_00_model_states.pt", "p/ds/zero_pp_rank_0_mp_rank_00_optim_states.pt",
            "p/ds/zero_pp_rank_1_mp_rank_00_optim_states.pt", "p/ds/bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    assert files_for_rank(keys, 1) == [keys[0], keys[2], keys[3]]
    assert files_for_rank(keys, 0) == keys[:2]
