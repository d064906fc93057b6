"""The advantage estimators against hand-computed cases (pure tensors, no models)."""

import pytest
import torch
from limr_api.training import PPOSpec
from limr_trainer.ppo import advantages, core


def _batch(n: int = 4, t: int = 3, kl: float = 0.0) -> dict[str, torch.Tensor]:
    mask = torch.ones(n, t)
    return {"action_mask": mask, "old_logprobs": torch.full((n, t), kl), "ref_logprobs": torch.zeros(n, t),
            "group_ids": torch.tensor([0, 0, 1, 1][:n])}


def test_group_normalize_and_leave_one_out_by_hand():
    scores, groups = torch.tensor([1.0, -0.5, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    # group 0: mean 0.25, unbiased std = sqrt(((0.75)^2 + (0.75)^2) / 1) = 1.0607
    norm = core.group_normalize(scores, groups)
    assert norm[:2].tolist() == pytest.approx([0.75 / 1.06066, -0.75 / 1.06066], rel=1e-4)
    assert norm[2:].tolist() == [0.0, 0.0]  # a uniform group carries no signal
    assert core.leave_one_out(scores, groups).tolist() == [1.5, -1.5, 0.0, 0.0]


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert core.discounted_returns(rewards, mask, 0.5).tolist() == [[1.0, 2.0, 2.0], [3.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", ["grpo", "rloo"])
def test_critic_free_estimators_give_every_token_the_sequence_advantage_without_kl(name):
    batch = _batch()
    stats = advantages.compute_advantages(batch, torch.tensor([1.0, -0.5, 1.0, 1.0]),
                                          PPOSpec(advantageEstimator=name))
    first = batch["advantages"][:, 0]
    assert torch.allclose(batch["advantages"], first[:, None].expand(-1, 3))  # gamma 1, no KL: same each token
    expected = {"grpo": [0.7071, -0.7071, 0.0, 0.0], "rloo": [1.5, -1.5, 0.0, 0.0]}[name]
    assert first.tolist() == pytest.approx(expected, abs=1e-4)
    assert stats["kl"] == 0.0 and "old_values" not in batch


def test_the_kl_penalty_enters_every_token_reward():
    batch = _batch(kl=0.5)  # k1 = 0.5 per token, coefficient 0.01 -> -0.005 per token
    advantages.compute_advantages(batch, torch.tensor([1.0, 1.0, 1.0, 1.0]), PPOSpec(advantageEstimator="grpo"))
    assert batch["advantages"][0].tolist() == pytest.approx([-0.015, -0.01, -0.005])


def test_reinforce_pp_whitens_over_the_batch():
    batch = _batch()
    advantages.compute_advantages(batch, torch.tensor([1.0, -0.5, -1.0, 1.0]), PPOSpec(advantageEstimator="reinforce++"))
    adv = batch["advantages"]
    assert adv.mean().item() == pytest.approx(0.0, abs=1e-6) and adv.std(unbiased=False).item() == pytest.approx(1.0, 1e-4)


def test_only_gae_needs_a_critic():
    assert advantages.needs_critic("gae")
    assert not any(advantages.needs_critic(n) for n in ("grpo", "rloo", "reinforce++"))
    assert set(advantages.ESTIMATORS) == {"gae", "grpo", "rloo", "reinforce++"}


def test_the_api_offers_exactly_the_registered_estimators():
    import typing

    assert set(typing.get_args(PPOSpec.model_fields["advantageEstimator"].annotation)) == set(advantages.ESTIMATORS)
