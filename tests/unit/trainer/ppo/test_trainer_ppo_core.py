"""PPO math against hand-computed small cases."""

import math

import pytest
import torch
from limr_trainer.ppo import core


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def close(actual, expected, rel=1e-6):
    assert torch.allclose(actual.double(), t(expected), rtol=rel, atol=1e-9), (actual.tolist(), expected)


def test_kl_estimators():
    logp, ref = t([[-1.0, -2.0]]), t([[-1.5, -1.0]])
    assert core.kl_penalty(logp, ref, "k1").tolist() == [[0.5, -1.0]]
    assert core.kl_penalty(logp, ref, "k2").tolist() == [[0.125, 0.5]]
    k3 = core.kl_penalty(logp, ref, "k3")[0].tolist()
    assert k3[0] == pytest.approx(math.exp(-0.5) - 1 + 0.5)
    assert k3[1] == pytest.approx(math.exp(1.0) - 1 - 1.0)
    with pytest.raises(ValueError):
        core.kl_penalty(logp, ref, "k9")


def test_token_rewards_put_score_on_last_response_token():
    # prompt slot, two response tokens, one pad
    mask = t([[0, 1, 1, 0]])
    kl = t([[9.0, 0.5, -1.0, 7.0]])
    r = core.token_rewards(t([1.0]), kl, mask, kl_coef=0.1)
    close(r, [[0.0, -0.05, 1.0 + 0.1, 0.0]])


def test_gae_hand_case():
    # gamma 1, lambda 0.5; response tokens at t=1,2; terminal after t=2
    mask = t([[0, 1, 1, 0]])
    rewards = t([[0.0, 0.0, 1.0, 0.0]])
    values = t([[5.0, 0.2, 0.4, 3.0]])
    adv, ret = core.gae(rewards, values, mask, gamma=1.0, lam=0.5)
    d2 = 1.0 + 0 - 0.4          # 0.6
    d1 = 0.0 + 0.4 - 0.2        # 0.2
    a2, a1 = d2, d1 + 0.5 * d2  # 0.6, 0.5
    close(adv, [[0.0, a1, a2, 0.0]])
    close(ret, [[0.0, a1 + 0.2, a2 + 0.4, 0.0]])


def test_gae_lambda_one_gamma_one_is_return_minus_value():
    mask = t([[1, 1, 1]])
    rewards = t([[0.1, -0.2, 1.0]])
    values = t([[0.3, 0.1, 0.5]])
    adv, ret = core.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    close(ret, [[0.9, 0.8, 1.0]])
    close(adv, [[0.6, 0.7, 0.5]])


def test_policy_loss_clipping():
    mask = t([[1, 1]])
    old = t([[0.0, 0.0]])
    logp = t([[math.log(1.5), math.log(0.5)]]).requires_grad_()
    adv = t([[1.0, 1.0]])
    loss, stats = core.policy_loss(logp, old, adv, mask, clip=0.2)
    # token 1: ratio 1.5 -> max(-1.5, -1.2) = -1.2 (clipped); token 2: ratio .5 -> max(-.5, -.8) = -.5
    assert loss.item() == pytest.approx((-1.2 - 0.5) / 2)
    assert stats["clip_fraction"] == pytest.approx(0.5)
    loss.backward()
    close(logp.grad, [[0.0, -0.5 / 2]])  # no gradient through the clipped token


def test_policy_loss_negative_advantage():
    mask = t([[1]])
    loss, _ = core.policy_loss(t([[math.log(0.5)]]), t([[0.0]]), t([[-2.0]]), mask, clip=0.2)
    # ratio .5: max(1.0, 2*0.8=1.6) = 1.6
    assert loss.item() == pytest.approx(1.6)


def test_value_loss_clipping():
    mask = t([[1, 1]])
    old = t([[0.0, 0.0]])
    values = t([[1.0, 0.1]])
    returns = t([[1.0, 1.0]])
    loss, stats = core.value_loss(values, old, returns, mask, clip=0.2)
    # token 1: unclipped 0, clipped (0.2-1)^2=.64 -> .64; token 2: both (0.1-1)^2 = .81
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert stats["value_clip_fraction"] == pytest.approx(0.5)
    plain, _ = core.value_loss(values, old, returns, mask, clip=None)
    assert plain.item() == pytest.approx(0.5 * (0 + 0.81) / 2)


def test_whiten_and_masked_mean():
    x = t([[1.0, 2.0, 3.0, 100.0]])
    mask = t([[1, 1, 1, 0]])
    assert core.masked_mean(x, mask).item() == pytest.approx(2.0)
    w = core.masked_whiten(x, mask)
    std = math.sqrt(2 / 3)
    close(w, [[-1 / std, 0.0, 1 / std, 0.0]])


def test_running_moments_match_full_statistics():
    rm = core.RunningMoments(count=0.0, mean=0.0, var=0.0)
    data = [1.0, -0.5, -1.0, 1.0, 1.0, -0.5, 0.25]
    rm.update(data[:3])
    rm.update(data[3:])
    full = torch.tensor(data, dtype=torch.float64)
    assert rm.mean == pytest.approx(full.mean().item())
    assert rm.var == pytest.approx(full.var(unbiased=False).item())
    again = core.RunningMoments.from_state(rm.state_dict())
    assert again.normalize(t([rm.mean])).item() == pytest.approx(0.0)


def test_entropy_and_gather():
    logits = torch.zeros(1, 1, 4, dtype=torch.float64)
    assert core.entropy_from_logits(logits).item() == pytest.approx(math.log(4))
    assert core.gather_logprobs(logits, torch.tensor([[2]])).item() == pytest.approx(-math.log(4))
    assert core.last_index(t([[0, 1, 1, 0], [1, 0, 0, 0]])).tolist() == [2, 0]
