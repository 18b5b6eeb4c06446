"""WGAN-GP: the gradient penalty (a second-order gradient) against finite differences, and the
recipe's step (the generic resume and CLI tests run it too, as every registered recipe)."""
import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.models.gan import WGANGP
from tinygrad_pt.train.recipes import make_recipe

EPS = 1e-6


def small_wgan():
    tg.manual_seed(3)
    return WGANGP(latent=2, hidden=4, out=3).double()


def critic_on(model, x):
    with tg.no_grad():
        return model.discriminator(tg.tensor(x)).numpy()


def numeric_penalty(model, x):
    """mean (||d D / d x||_2 - 1)^2 with the input gradient by central differences."""
    grads = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[idx] = EPS
        grads[idx] = (critic_on(model, x + step) - critic_on(model, x - step))[idx[0]] / (2 * EPS)
    return float(((np.sqrt((grads ** 2).sum(axis=1)) - 1.0) ** 2).mean())


def test_gradient_penalty_matches_finite_differences():
    model = small_wgan()
    x = np.random.default_rng(0).standard_normal((5, 3))
    real = tg.tensor(x)
    gp = model.gradient_penalty(real, real)  # fake = real: x_hat = x whatever eps is
    assert gp.item() == pytest.approx(numeric_penalty(model, x), rel=1e-6)


def test_gradient_penalty_gradient_in_the_critic_weights_matches_finite_differences():
    model = small_wgan()
    x = np.random.default_rng(1).standard_normal((4, 3))
    real = tg.tensor(x)
    model.gradient_penalty(real, real).backward()  # differentiates the input gradient
    # (the biases act on the input gradient only through LeakyReLU's piecewise constant slope:
    # no gradient reaches them)
    assert model.discriminator.body[0].bias.grad is None
    for p in (model.discriminator.body[0].weight, model.discriminator.body[2].weight,
              model.discriminator.head.weight):
        analytic = p.grad.numpy()
        numeric = np.zeros(p.shape)
        for idx in np.ndindex(*p.shape):
            orig = p.data[idx]
            with tg.no_grad():
                p.data[idx] = orig + 1e-5
                plus = numeric_penalty(model, x)
                p.data[idx] = orig - 1e-5
                minus = numeric_penalty(model, x)
                p.data[idx] = orig
            numeric[idx] = (plus - minus) / 2e-5
        np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-5)


def test_critic_terms_and_generator_loss():
    model = small_wgan()
    x = tg.tensor(np.random.default_rng(2).standard_normal((6, 3)))
    z = tg.tensor(np.random.default_rng(3).standard_normal((6, 2)))
    loss, distance, gp = model.critic_terms(x, z)
    fake = model.generator(z).numpy()
    expected = critic_on(model, x.numpy()).mean() - critic_on(model, fake).mean()
    assert distance.item() == pytest.approx(expected, rel=1e-10)
    assert loss.item() == pytest.approx(10.0 * gp.item() - expected, rel=1e-10)
    assert model.generator_loss(z).item() == pytest.approx(-critic_on(model, fake).mean())
    with pytest.raises(ValueError, match="penalty must be a non-negative number"):
        WGANGP(penalty=-1.0)


def test_recipe_step_moves_both_networks_and_reports_the_penalty():
    recipe = make_recipe("wgan_gp", {"hidden": 8, "latent": 4, "batch_size": 8, "n_critic": 2,
                                     "classifier_steps": 5, "score_samples": 16})
    g0 = [p.numpy() for p in recipe.gan.generator.parameters()]
    d0 = [p.numpy() for p in recipe.gan.discriminator.parameters()]
    (batches,) = recipe.draw_batch()
    assert batches.shape == (2, 8, 64)
    metrics = recipe.step_on(batches)
    assert set(metrics) == {"loss_d", "loss_g", "wasserstein", "gradient_penalty"}
    assert all(np.isfinite(m.item()) for m in metrics.values())
    assert all(not np.array_equal(a, p.numpy()) for a, p in zip(g0, recipe.gan.generator.parameters()))
    moved = [not np.array_equal(a, p.numpy())
             for a, p in zip(d0, recipe.gan.discriminator.parameters())]
    assert moved[:-1] == [True] * (len(moved) - 1)  # the head's bias cancels out of L_D
    assert not moved[-1]
    evaluation = recipe.evaluate()
    assert "wasserstein_estimate" in evaluation and "d_accuracy" not in evaluation
    assert "critic's Wasserstein estimate" in recipe.summary(evaluation)
    with pytest.raises(ValueError, match="n_critic"):
        make_recipe("wgan_gp", {"n_critic": 0})
