"""Fast tests of the image models (AE, DAE, VAE, GAN, the digits classifier) and their recipes.

Shapes, gradients reaching every parameter, a few steps lowering the loss, the VAE's KL and ELBO
against independent NumPy computations, the reparameterisation gradient, the GAN's two steps
leaving the other network alone, the classifier's sample score, and the recipes' config errors.
The slow quality bars are in test_quality_images.py.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
from tinygrad_pt.backend import get_rng_state
from tinygrad_pt.models.ae import AutoEncoder, DenoisingAutoEncoder
from tinygrad_pt.models.classifier import DigitsClassifier, score_samples
from tinygrad_pt.models.gan import (GAN, Discriminator, Generator, discriminator_features,
                                    ridge_probe_accuracy)
from tinygrad_pt.models.vae import VAE, gaussian_kl
from tinygrad_pt.train.classifier import train_digits_classifier
from tinygrad_pt.train.recipes.autoencoder import AERecipe, DAERecipe
from tinygrad_pt.train.recipes.gan import GANRecipe, frozen
from tinygrad_pt.train.recipes.vae import VAERecipe


def digits_batch(n=32, seed=0):
    from tinygrad_pt.data import load_digits
    x, y = load_digits("train")
    idx = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[idx], y[idx]


def snapshot(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def assert_every_parameter_has_gradient(module):
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert np.abs(p.grad.numpy()).sum() > 0, f"{name} got an all-zero gradient"
        assert p.grad.dtype == np.float32, f"{name}: gradient dtype {p.grad.dtype}"


def adam_steps(model, loss_fn, steps=30, lr=3e-3):
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# ----------------------------------------------------------------------------------------------------
# AutoEncoder / DenoisingAutoEncoder


def test_autoencoder_shapes_and_range():
    x, _ = digits_batch(5)
    ae = AutoEncoder()
    z = ae.encode(tg.tensor(x))
    out = ae(tg.tensor(x))
    assert z.shape == (5, 16) and out.shape == (5, 64)
    assert out.dtype == np.float32
    assert 0 < out.numpy().min() and out.numpy().max() < 1  # a sigmoid's range
    # The encoder is a plain submodule: a feature extractor for probes.
    assert isinstance(ae.encoder, nn.Module)
    np.testing.assert_array_equal(ae.encoder(tg.tensor(x)).numpy(), z.numpy())
    assert ae.decode_logits(z).shape == (5, 64)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_autoencoder_gradients_reach_every_parameter(loss):
    x, _ = digits_batch(8)
    ae = AutoEncoder(loss=loss)
    ae.loss(tg.tensor(x)).backward()
    assert_every_parameter_has_gradient(ae)


def test_autoencoder_loss_values_against_numpy():
    x, _ = digits_batch(6)
    for kind in ("bce", "mse"):
        ae = AutoEncoder(hidden=8, latent=3, loss=kind)
        logits = ae.decode_logits(ae.encode(tg.tensor(x))).numpy().astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-logits))
        if kind == "bce":
            expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).mean()
        else:
            expected = ((p - x) ** 2).mean()
        assert ae.loss(tg.tensor(x)).item() == pytest.approx(expected, rel=1e-5)


def test_autoencoder_a_few_steps_reduce_the_loss():
    x = tg.tensor(digits_batch(64)[0])
    ae = AutoEncoder()
    losses = adam_steps(ae, lambda: ae.loss(x))
    assert losses[-1] < 0.8 * losses[0], losses


def test_autoencoder_bad_input():
    ae = AutoEncoder()
    with pytest.raises(ValueError,
                       match=r"AutoEncoder: expected input of shape \(N, 64\), got \(3, 10\)"):
        ae(tg.zeros(3, 10))
    with pytest.raises(TypeError, match="AutoEncoder: expected a Tensor"):
        ae(np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match="AutoEncoder: loss must be one of"):
        AutoEncoder(loss="l1")
    with pytest.raises(ValueError, match="AutoEncoder: latent must be positive, got 0"):
        AutoEncoder(latent=0)


def test_denoising_corruptions():
    x, _ = digits_batch(20)
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    gauss = DenoisingAutoEncoder(corruption="gaussian", noise_std=0.3)
    mask = DenoisingAutoEncoder(corruption="mask", mask_fraction=0.25)
    both = DenoisingAutoEncoder(corruption="both", noise_std=0.3, mask_fraction=0.25)

    g = gauss.corrupt(x, rng())
    assert g.shape == x.shape and g.dtype == np.float32
    assert 0 <= g.min() and g.max() <= 1          # clipped back to the pixel range
    assert np.abs(g - x).mean() > 0.05            # and really noisy
    np.testing.assert_array_equal(g, gauss.corrupt(x, rng()))  # the rng decides everything

    m = mask.corrupt(x, rng())
    changed = m != x
    assert np.all(m[changed] == 0)                # masking only zeroes pixels
    assert np.all((m == 0).sum(axis=1) >= 16)     # at least round(0.25 * 64) zeros per image
    kept = m != 0
    np.testing.assert_array_equal(m[kept], x[kept])  # and leaves the others alone

    b = both.corrupt(x, rng())
    assert np.all((b == 0).sum(axis=1) >= 16) and np.abs(b - x).mean() > np.abs(m - x).mean()
    assert x.min() >= 0 and not np.shares_memory(b, x)


def test_denoising_autoencoder_trains_on_corrupted_inputs():
    x, _ = digits_batch(64)
    dae = DenoisingAutoEncoder()
    rng = np.random.default_rng(0)
    noisy = tg.tensor(dae.corrupt(x, rng))
    clean = tg.tensor(x)
    loss = dae.loss(noisy, clean)
    loss.backward()
    assert_every_parameter_has_gradient(dae)
    losses = adam_steps(dae, lambda: dae.loss(noisy, clean))
    assert losses[-1] < 0.8 * losses[0]


def test_denoising_bad_config():
    with pytest.raises(ValueError, match="corruption must be one of"):
        DenoisingAutoEncoder(corruption="blur")
    with pytest.raises(ValueError, match=r"mask_fraction must be in \[0, 1\), got 1.5"):
        DenoisingAutoEncoder(mask_fraction=1.5)
    with pytest.raises(ValueError, match="noise_std must be a number >= 0, got -1"):
        DenoisingAutoEncoder(noise_std=-1)


# ----------------------------------------------------------------------------------------------------
# VAE


def test_vae_shapes():
    x, _ = digits_batch(7)
    vae = VAE()
    mu, logvar = vae.encode(tg.tensor(x))
    assert mu.shape == logvar.shape == (7, 8)
    logits, mu2, _ = vae(tg.tensor(x))
    assert logits.shape == (7, 64)
    np.testing.assert_array_equal(mu.numpy(), mu2.numpy())
    assert vae.elbo(tg.tensor(x)).shape == (7,)
    assert vae.loss(tg.tensor(x)).shape == ()
    s = vae.sample(5).numpy()
    assert s.shape == (5, 64) and s.dtype == np.float32 and 0 < s.min() and s.max() < 1
    assert vae.reconstruct(tg.tensor(x)).shape == (7, 64)


def test_vae_bad_input():
    vae = VAE()
    with pytest.raises(ValueError,
                       match=r"VAE: expected input of shape \(N, 64\), got \(2, 8, 8\)"):
        vae.encode(tg.zeros(2, 8, 8))
    mu = tg.zeros(2, 8)
    with pytest.raises(ValueError, match=r"eps of shape \(2, 3\) must match mu's shape \(2, 8\)"):
        vae.reparameterize(mu, mu, tg.zeros(2, 3))


def test_gaussian_kl_against_monte_carlo():
    """KL(q || N(0, I)) = E_q[log q(z) - log p(z)], estimated by sampling, densities written out."""
    rng = np.random.default_rng(0)
    mu = np.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
    logvar = np.array([[0.0, -1.0, 0.8], [-2.0, 0.5, 0.0]])
    closed = gaussian_kl(tg.tensor(mu), tg.tensor(logvar)).numpy()
    n = 400_000
    for row in range(2):
        sd = np.exp(0.5 * logvar[row])
        z = mu[row] + sd * rng.standard_normal((n, 3))
        log_q = (-0.5 * ((z - mu[row]) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)).sum(1)
        log_p = (-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)).sum(1)
        mc = (log_q - log_p).mean()
        stderr = (log_q - log_p).std() / math.sqrt(n)
        assert abs(closed[row] - mc) < 5 * stderr + 1e-3, (closed[row], mc, stderr)
    assert closed.dtype == np.float64  # float64 in, float64 out


def test_gaussian_kl_is_zero_at_the_prior():
    assert gaussian_kl(tg.zeros(3, 4), tg.zeros(3, 4)).numpy() == pytest.approx([0, 0, 0])


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4)),
                  elements=st.floats(-2, 2)))
def test_gaussian_kl_gradcheck(a):
    mu = tg.tensor(a, requires_grad=True)
    logvar = tg.tensor(a[::-1] * 0.5, requires_grad=True)
    assert tg.testing.gradcheck(gaussian_kl, mu, logvar)


def test_vae_elbo_against_numpy():
    """-ELBO = sum over pixels of BCE(sigmoid(logits), x) + KL, with the noise eps given."""
    x, _ = digits_batch(4)
    vae = VAE(hidden=16, latent=3).double()
    eps = np.random.default_rng(1).standard_normal((4, 3))
    xt = tg.tensor(x.astype(np.float64))
    mu, logvar = (t.numpy() for t in vae.encode(xt))
    z = mu + np.exp(logvar / 2) * eps
    logits = vae.decode_logits(tg.tensor(z)).numpy()
    p = 1 / (1 + np.exp(-logits))
    x64 = x.astype(np.float64)
    recon = -(x64 * np.log(p) + (1 - x64) * np.log(1 - p)).sum(axis=1)
    kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    np.testing.assert_allclose(vae.elbo(xt, tg.tensor(eps)).numpy(), -(recon + kl), rtol=1e-10)
    assert vae.loss(xt, tg.tensor(eps)).item() == pytest.approx((recon + kl).mean(), rel=1e-10)


def test_reparameterisation_gradient():
    """z = mu + exp(logvar/2) eps: dz/dmu = 1, dz/dlogvar = exp(logvar/2) eps / 2."""
    rng = np.random.default_rng(2)
    mu_a, lv_a, eps_a = (rng.standard_normal((3, 4)) for _ in range(3))
    vae = VAE(latent=4)
    mu = tg.tensor(mu_a, requires_grad=True)
    logvar = tg.tensor(lv_a, requires_grad=True)
    upstream = rng.standard_normal((3, 4))
    (vae.reparameterize(mu, logvar, tg.tensor(eps_a)) * tg.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), upstream, rtol=1e-12)
    np.testing.assert_allclose(logvar.grad.numpy(), upstream * np.exp(lv_a / 2) * eps_a / 2,
                               rtol=1e-12)
    assert tg.testing.gradcheck(lambda m, lv: vae.reparameterize(m, lv, tg.tensor(eps_a)),
                                tg.tensor(mu_a, requires_grad=True),
                                tg.tensor(lv_a, requires_grad=True))


def test_reparameterisation_noise_comes_from_the_framework_generator():
    vae = VAE(latent=4)
    mu, logvar = tg.zeros(1000, 4), tg.zeros(1000, 4)
    tg.manual_seed(5)
    z1 = vae.reparameterize(mu, logvar).numpy()
    z2 = vae.reparameterize(mu, logvar).numpy()
    tg.manual_seed(5)
    np.testing.assert_array_equal(vae.reparameterize(mu, logvar).numpy(), z1)  # seeded
    assert not np.array_equal(z1, z2)                                        # fresh each call
    assert abs(z1.mean()) < 0.1 and abs(z1.std() - 1) < 0.1 and z1.dtype == np.float32


def test_vae_gradients_and_a_few_steps():
    x = tg.tensor(digits_batch(64)[0])
    vae = VAE()
    vae.loss(x).backward()
    assert_every_parameter_has_gradient(vae)
    vae.zero_grad()
    losses = adam_steps(vae, lambda: vae.loss(x))
    assert losses[-1] < 0.8 * losses[0], losses


# ----------------------------------------------------------------------------------------------------
# GAN


def test_gan_shapes():
    gan = GAN()
    z = gan.sample_latents(6)
    assert z.shape == (6, 32) and z.dtype == np.float32
    fake = gan(z)
    assert fake.shape == (6, 64) and 0 < fake.numpy().min() and fake.numpy().max() < 1
    assert gan.discriminator(fake).shape == (6,)
    assert gan.discriminator.features(fake).shape == (6, 256)
    assert Generator(latent=4, hidden=8, out=9)(tg.zeros(2, 4)).shape == (2, 9)
    assert Discriminator(in_dim=9, hidden=5).features(tg.zeros(2, 9)).shape == (2, 5)
    with pytest.raises(ValueError,
                       match=r"Generator: expected latents of shape \(N, 32\), got \(2, 3\)"):
        gan.generator(tg.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Discriminator: expected images of shape \(N, 64\)"):
        gan.discriminator(tg.zeros(2, 65))


def test_gan_losses_against_numpy():
    x, _ = digits_batch(5)
    gan = GAN(latent=3, hidden=8).double()
    z = np.random.default_rng(0).standard_normal((5, 3))
    d_real = gan.discriminator(tg.tensor(x.astype(np.float64))).numpy()
    d_fake = gan.discriminator(gan.generator(tg.tensor(z))).numpy()
    log_sig = lambda v: -np.log1p(np.exp(-v))  # noqa: E731  log sigmoid(v)
    expected_d = -log_sig(d_real).mean() - np.log(1 - 1 / (1 + np.exp(-d_fake))).mean()
    expected_g = -log_sig(d_fake).mean()  # non-saturating: -log D(G(z))
    assert gan.discriminator_loss(tg.tensor(x.astype(np.float64)), tg.tensor(z)).item() == \
        pytest.approx(expected_d, rel=1e-10)
    assert gan.generator_loss(tg.tensor(z)).item() == pytest.approx(expected_g, rel=1e-10)


def test_gan_d_step_leaves_g_alone_and_g_step_leaves_d_alone():
    x, _ = digits_batch(16)
    gan = GAN()
    g_opt = tg.optim.Adam(gan.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = tg.optim.Adam(gan.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    # D step: the fakes are detached, so no gradient reaches G; G does not move.
    g_before, d_before = snapshot(gan.generator), snapshot(gan.discriminator)
    gan.discriminator_loss(tg.tensor(x), gan.sample_latents(16)).backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert_every_parameter_has_gradient(gan.discriminator)
    d_opt.step()
    assert all(np.array_equal(v, g_before[k]) for k, v in snapshot(gan.generator).items())
    assert all(not np.array_equal(v, d_before[k]) for k, v in snapshot(gan.discriminator).items())

    # G step with D frozen: no gradient for D; only G moves.
    d_opt.zero_grad()
    g_before, d_before = snapshot(gan.generator), snapshot(gan.discriminator)
    with frozen(gan.discriminator):
        loss_g = gan.generator_loss(gan.sample_latents(16))
    loss_g.backward()
    assert all(p.grad is None for p in gan.discriminator.parameters())
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # unfrozen again
    assert_every_parameter_has_gradient(gan.generator)
    g_opt.step()
    assert all(np.array_equal(v, d_before[k]) for k, v in snapshot(gan.discriminator).items())
    assert all(not np.array_equal(v, g_before[k]) for k, v in snapshot(gan.generator).items())


def test_gan_discriminator_learns_real_from_fake_in_a_few_steps():
    x = tg.tensor(digits_batch(64)[0])
    gan = GAN()
    opt = tg.optim.Adam(gan.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    z = gan.sample_latents(64)
    losses = []
    for _ in range(20):
        loss = gan.discriminator_loss(x, z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_discriminator_features_shape_and_nontrivial():
    x, y = digits_batch(200)
    disc = Discriminator()
    f = discriminator_features(disc, x, batch_size=64)
    assert f.shape == (200, 256) and f.dtype == np.float32 and np.all(np.isfinite(f))
    assert f.std(axis=0).mean() > 1e-3                      # varies across images
    assert np.linalg.matrix_rank(f.astype(np.float64), tol=1e-6) > 50  # not a few directions
    # Even a random discriminator's features keep the classes linearly separable on train.
    assert ridge_probe_accuracy(f, y, f, y) > 0.9


def test_ridge_probe_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centres = np.array([[0, 0], [5, 0], [0, 5]], dtype=np.float64)
    f = centres[y] + 0.3 * rng.standard_normal((300, 2))
    assert ridge_probe_accuracy(f[:200], y[:200], f[200:], y[200:]) == 1.0
    noise = rng.standard_normal((300, 2))  # features that know nothing of the labels
    assert ridge_probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6


# ----------------------------------------------------------------------------------------------------
# The digits classifier and the sample score


class _FixedLogits(nn.Module):
    """A 'classifier' whose logits are given: row i of `table` for an image whose pixel 0 is i."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(np.asarray(table, dtype=np.float32))

    def forward(self, x):
        rows = x.numpy()[:, 0].astype(np.int64)
        return self.table[tg.tensor(rows)]


def test_score_samples_counts_confident_classes():
    big = 10.0  # softmax([10, 0, ...]) = 0.9989: confident
    table = np.zeros((5, 10))
    table[0, 3] = table[1, 3] = table[2, 7] = big
    table[3, 1] = 1.0  # softmax top probability 0.23: not confident
    # table[4] all equal: 0.1 each
    images = np.zeros((5, 64), np.float32)
    images[:, 0] = np.arange(5)
    s = score_samples(_FixedLogits(table), images)
    assert s["confident_fraction"] == pytest.approx(3 / 5)
    assert s["classes_covered"] == 2
    assert s["class_counts"] == [0, 0, 0, 2, 0, 0, 0, 1, 0, 0]
    p = np.array([2 / 3, 1 / 3])
    assert s["class_entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum())
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\), got 1.5"):
        score_samples(_FixedLogits(table), images, threshold=1.5)


def test_classifier_training_is_seeded_and_leaves_the_framework_generator_alone():
    before = get_rng_state("cpu")
    m1, acc1 = train_digits_classifier(steps=30, seed=3)
    assert get_rng_state("cpu") == before
    m2, acc2 = train_digits_classifier(steps=30, seed=3)
    assert acc1 == acc2 and 0.3 < acc1 <= 1.0  # 30 steps already beat chance (0.1)
    for (k, a), (_, b) in zip(snapshot(m1).items(), snapshot(m2).items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert isinstance(m1, DigitsClassifier)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        train_digits_classifier(steps=0)


# ----------------------------------------------------------------------------------------------------
# Recipes

SMALL = {
    "ae": (AERecipe, {"hidden": 32, "latent": 4}),
    "dae": (DAERecipe, {"hidden": 32, "latent": 4}),
    "vae": (VAERecipe, {"hidden": 32, "latent": 2, "eval_draws": 2}),
    "gan": (GANRecipe, {"hidden": 32, "latent": 4, "score_samples": 40, "classifier_steps": 20}),
}
EXPECTED_METRICS = {
    "ae": {"test_mse", "baseline_mse", "mse_ratio"},
    "dae": {"test_mse", "baseline_mse", "mse_ratio", "test_mse_corrupted", "corrupted_input_mse"},
    "vae": {"test_elbo", "test_recon", "test_kl", "mean_image_loglik"},
    "gan": {"d_accuracy", "d_accuracy_real", "d_accuracy_fake", "confident_fraction",
            "classes_covered", "class_entropy_bits", "classifier_test_accuracy",
            "d_feature_probe_accuracy", "d_feature_probe_accuracy_init", "pixel_probe_accuracy"},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_recipe_steps_evaluate_and_plot(name, tmp_path):
    cls, config = SMALL[name]
    recipe = cls(config, seed=0)
    assert recipe.name == name
    for step in range(3):
        metrics = recipe.train_step(step)
        assert metrics and all(isinstance(v, tg.Tensor) and v.shape == () for v in metrics.values())
    rng_state, tg_state = recipe.rng.bit_generator.state, get_rng_state("cpu")
    ev = recipe.evaluate()
    assert set(ev) == EXPECTED_METRICS[name]
    assert all(isinstance(v, float) and math.isfinite(v) for v in ev.values())
    # Evaluating draws nothing from the training generators.
    assert recipe.rng.bit_generator.state == rng_state and get_rng_state("cpu") == tg_state
    assert ev == recipe.evaluate()  # fixed evaluation noise: the same model, the same numbers
    assert isinstance(recipe.summary(ev), str)
    paths = recipe.artifacts(str(tmp_path))
    assert paths and all(os.path.getsize(p) > 0 and p.endswith(".png") for p in paths)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_recipe_is_seeded(name):
    cls, config = SMALL[name]
    runs = []
    for _ in range(2):
        recipe = cls(config, seed=7)
        runs.append([{k: v.item() for k, v in recipe.train_step(s).items()} for s in range(3)])
    assert runs[0] == runs[1]
    other = cls(config, seed=8)
    assert [{k: v.item() for k, v in other.train_step(s).items()} for s in range(3)] != runs[0]


def test_recipe_train_steps_lower_the_loss():
    recipe = AERecipe({"lr": 3e-3})
    first = recipe.train_step(0)["loss"].item()
    for s in range(1, 60):
        last = recipe.train_step(s)["loss"].item()
    assert last < 0.8 * first


def test_gan_recipe_step_moves_both_networks():
    recipe = GANRecipe(SMALL["gan"][1])
    g0, d0 = snapshot(recipe.gan.generator), snapshot(recipe.gan.discriminator)
    recipe.train_step(0)
    for before, module in ((g0, recipe.gan.generator), (d0, recipe.gan.discriminator)):
        assert all(not np.array_equal(v, before[k]) for k, v in snapshot(module).items())


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_generative_recipes_sample(name, tmp_path):
    cls, config = SMALL[name]
    (path,) = cls(config).sample(str(tmp_path), n=5)
    assert os.path.getsize(path) > 0
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        cls(config).sample(str(tmp_path), n=0)


@pytest.mark.parametrize("cls", [AERecipe, DAERecipe])
def test_autoencoders_do_not_sample(cls, tmp_path):
    with pytest.raises(NotImplementedError, match="does not generate samples"):
        cls({"hidden": 8}).sample(str(tmp_path))


@pytest.mark.parametrize("cls, config, message", [
    (AERecipe, {"latnt": 4}, r"ae: unknown config keys \['latnt'\]"),
    (AERecipe, {"lr": -1.0}, r"ae: config lr=-1.0; expected a positive number"),
    (AERecipe, {"hidden": 0}, r"ae: config hidden=0; expected a positive integer"),
    (AERecipe, {"loss": "l1"}, r"ae: config loss='l1'; expected one of \('bce', 'mse'\)"),
    (DAERecipe, {"corruption": "blur"}, r"dae: config corruption='blur'; expected one of"),
    (DAERecipe, {"mask_fraction": 1.0}, r"dae: config mask_fraction=1.0; expected a number in"),
    (DAERecipe, {"noise_std": -0.1}, r"dae: config noise_std=-0.1; expected a number >= 0"),
    (VAERecipe, {"latent": 2.5}, r"vae: config latent=2.5; expected a positive integer"),
    (VAERecipe, {"eval_draws": 0}, r"vae: config eval_draws=0; expected a positive integer"),
    (GANRecipe, {"beta1": 1.0}, r"gan: config beta1=1.0; expected a number in \[0, 1\)"),
    (GANRecipe, {"confidence": 2}, r"gan: config confidence=2; expected a number in \[0, 1\)"),
    (GANRecipe, {"batch_size": True}, r"gan: config batch_size=True; expected a positive integer"),
])
def test_recipe_config_errors(cls, config, message):
    with pytest.raises(ValueError, match=message):
        cls(config)


def test_recipes_are_registered():
    from tinygrad_pt.train.recipes import get_recipe
    for name, (cls, _) in SMALL.items():
        assert get_recipe(name) is cls
