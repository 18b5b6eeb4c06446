"""The same training steps in PyTorch eager, for ``tinygrad-pt bench --compare torch``.

PyTorch is optional: this module imports it only when called, and the bench skips the torch
columns (saying so) where it is absent. Nothing else in tinygrad_pt imports it.

Each mirror is the tinygrad_pt recipe's model rebuilt with torch.nn, with the same layer names, so
the recipe's initial weights are copied in (``load_weights``): both sides start from the same
numbers and take the same step on the same NumPy batch (tests/test_bench.py checks that the first
losses agree). Same optimizer, same hyperparameters, same float32; the only differences are the
random draws made inside a step (VAE noise, GAN latents), which come from each framework's own
generator.

    step = torch_step(recipe)   # recipe: a built tinygrad_pt Recipe (config, weights, device)
    loss = step(*recipe.draw_batch())   # a 0-d torch tensor, not synchronised
"""
from __future__ import annotations

import numpy as np

__all__ = ["torch_available", "torch_step", "torch_version"]


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_version() -> str:
    import torch
    return torch.__version__


def load_weights(module, tg_module) -> None:
    """Copy a tinygrad_pt module's state dict into the torch mirror (the names match)."""
    import torch

    state = {k: torch.from_numpy(np.ascontiguousarray(v.numpy()))
             for k, v in tg_module.state_dict().items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    # A tied weight (GPT's lm_head) appears once in tinygrad_pt's state dict: that is the only
    # key torch may miss.
    if unexpected or any(not k.endswith("lm_head.weight") for k in missing):
        raise RuntimeError(f"torch mirror of {type(tg_module).__name__}: the layer names differ "
                           f"(missing {missing}, unexpected {unexpected})")


def _to(arrays, device):
    import torch
    return [torch.from_numpy(a).to(device) for a in arrays]


# ----------------------------------------------------------------------------------------------------
# The image families: MLPs on 8x8 digits

def _mlp(*widths, act="relu"):
    """Linear layers of the given widths with an activation between them, as nn.Sequential."""
    from torch import nn

    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def _ae_step(recipe, dev):
    import torch
    from torch import nn
    from torch.nn import functional as F

    c = recipe.config
    model = nn.Module()
    model.encoder = _mlp(64, c["hidden"], c["latent"])
    model.decoder = _mlp(c["latent"], c["hidden"], 64)
    load_weights(model, recipe.model)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"])
    bce = c["loss"] == "bce"

    def step(x, target=None):
        x, = _to([x], dev)
        target = x if target is None else _to([target], dev)[0]
        logits = model.decoder(model.encoder(x))
        loss = (F.binary_cross_entropy_with_logits(logits, target) if bce
                else F.mse_loss(torch.sigmoid(logits), target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def _vae_step(recipe, dev):
    import torch
    from torch import nn
    from torch.nn import functional as F

    c = recipe.config
    model = nn.Module()
    model.encoder = nn.Sequential(nn.Linear(64, c["hidden"]), nn.ReLU())
    model.to_mu = nn.Linear(c["hidden"], c["latent"])
    model.to_logvar = nn.Linear(c["hidden"], c["latent"])
    model.decoder = _mlp(c["latent"], c["hidden"], 64)
    load_weights(model, recipe.model)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _cosine_lambda(0, c["steps"], c["min_lr"] / c["lr"]))

    def step(x):
        x, = _to([x], dev)
        h = model.encoder(x)
        mu, logvar = model.to_mu(h), model.to_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        loss = (recon + kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return loss.detach()
    return step


def _gan_step(recipe, dev):
    import torch
    from torch import nn
    from torch.nn import functional as F

    c = recipe.config
    gen, disc = nn.Module(), nn.Module()
    gen.net = _mlp(c["latent"], c["hidden"], c["hidden"], 64, act="leaky")
    disc.body = nn.Sequential(nn.Linear(64, c["hidden"]), nn.LeakyReLU(0.2),
                              nn.Linear(c["hidden"], c["hidden"]), nn.LeakyReLU(0.2))
    disc.head = nn.Linear(c["hidden"], 1)
    load_weights(gen, recipe.gan.generator)
    load_weights(disc, recipe.gan.discriminator)
    gen.to(dev)
    disc.to(dev)
    betas = (c["beta1"], c["beta2"])
    opt_g = torch.optim.Adam(gen.parameters(), lr=c["lr"], betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=c["lr"], betas=betas)
    n = c["batch_size"]

    def d(x):
        return disc.head(disc.body(x)).squeeze(-1)

    def g(z):
        return torch.sigmoid(gen.net(z))

    def step(real):
        real, = _to([real], dev)
        fake = g(torch.randn(n, c["latent"], device=dev)).detach()
        d_real, d_fake = d(real), d(fake)
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        disc.requires_grad_(False)  # the G step: D frozen, as the recipe's frozen(...)
        d_fake = d(g(torch.randn(n, c["latent"], device=dev)))
        loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        disc.requires_grad_(True)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.detach()
    return step


# ----------------------------------------------------------------------------------------------------
# Contrastive: SimCLR and MoCo

def _encoder_and_head(c):
    """SimCLR's encoder and projection head; each keeps its layers in `.net`, as tinygrad_pt's."""
    from torch import nn

    class Net(nn.Module):
        def __init__(self, *widths):
            super().__init__()
            self.net = _mlp(*widths)

        def forward(self, x):
            return self.net(x)

    model = nn.Module()
    model.encoder = Net(64, c["hidden"], c["hidden"], c["feat_dim"])
    model.projection = Net(c["feat_dim"], c["proj_hidden"], c["proj_dim"])
    return model


def _nt_xent(z1, z2, temperature):
    import torch
    from torch.nn import functional as F

    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _simclr_step(recipe, dev):
    import torch

    c = recipe.config
    model = _encoder_and_head(c)
    load_weights(model, recipe.model)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])

    def step(v1, v2):
        v1, v2 = _to([v1, v2], dev)
        n = v1.shape[0]
        z = model.projection(model.encoder(torch.cat([v1, v2], 0)))
        loss = _nt_xent(z[:n], z[n:], c["temperature"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def _moco_step(recipe, dev):
    import copy

    import torch
    from torch import nn
    from torch.nn import functional as F

    c = recipe.config
    moco = recipe.moco
    pair = _encoder_and_head(c)
    encoder_q = nn.Sequential(pair.encoder, pair.projection)
    load_weights(encoder_q, moco.encoder_q)
    encoder_q.to(dev)
    encoder_k = copy.deepcopy(encoder_q).requires_grad_(False)
    load_weights(encoder_k, moco.encoder_k)
    queue = torch.from_numpy(moco.queue.numpy().copy()).to(dev)
    ptr = [moco.queue_ptr]
    opt = torch.optim.AdamW(encoder_q.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
    m, size = moco.momentum, queue.shape[0]

    def step(v1, v2):
        x_q, x_k = _to([v1, v2], dev)
        with torch.no_grad():
            for pk, pq in zip(encoder_k.parameters(), encoder_q.parameters()):
                pk.mul_(m).add_(pq, alpha=1.0 - m)
        negatives = queue.clone()
        if moco.symmetric:
            x_q, x_k = torch.cat([x_q, x_k], 0), torch.cat([x_k, x_q], 0)
        q = F.normalize(encoder_q(x_q), dim=1)
        with torch.no_grad():
            k = F.normalize(encoder_k(x_k), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negatives.T], 1) / moco.temperature
        loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=dev))
        with torch.no_grad():
            rows = (ptr[0] + torch.arange(k.shape[0], device=dev)) % size
            queue[rows] = k
            ptr[0] = (ptr[0] + k.shape[0]) % size
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()
    return step


# ----------------------------------------------------------------------------------------------------
# GPT

def _gpt_step(recipe, dev):
    import torch
    from torch import nn
    from torch.nn import functional as F

    c = recipe.config
    cfg = recipe.modules["model"].config
    C, nh = cfg.n_embd, cfg.n_head

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=cfg.bias)
            self.c_proj = nn.Linear(C, C, bias=cfg.bias)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2)
                       for t in self.c_attn(x).split(C, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(C, 4 * C, bias=cfg.bias)
            self.c_proj = nn.Linear(4 * C, C, bias=cfg.bias)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(C, bias=cfg.bias), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(C, bias=cfg.bias), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg.vocab_size, C)
            self.wpe = nn.Embedding(cfg.block_size, C)
            self.h = nn.ModuleList([Block() for _ in range(cfg.n_layer)])
            self.ln_f = nn.LayerNorm(C, bias=cfg.bias)
            self.lm_head = nn.Linear(C, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight  # tied, as tinygrad_pt's

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    model = GPT()
    load_weights(model, recipe.modules["model"])
    model.to(dev)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": c["weight_decay"]},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=c["lr"], betas=(c["beta1"], c["beta2"]))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _cosine_lambda(c["warmup_steps"], c["steps"], c["min_lr"] / c["lr"]))

    def step(windows):
        batch, = _to([windows], dev)
        x, y = batch[:, :-1], batch[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c["grad_clip"])
        opt.step()
        sched.step()
        return loss.detach()
    return step


def _cosine_lambda(warmup: int, total: int, floor: float):
    """LambdaLR's multiplier for tinygrad_pt's CosineWithWarmup (the same function)."""
    from ..optim.lr_scheduler import cosine_with_warmup

    return lambda step: cosine_with_warmup(step, 1.0, warmup, total, floor)


_MIRRORS = {"ae": _ae_step, "dae": _ae_step, "vae": _vae_step, "gan": _gan_step,
            "simclr": _simclr_step, "moco": _moco_step, "gpt": _gpt_step}


def torch_step(recipe, device: str | None = None):
    """A callable taking ``recipe.draw_batch()``'s arrays and doing the recipe's step in torch,
    on `device` ("cpu" or "cuda"; default the recipe's)."""
    if recipe.name not in _MIRRORS:
        raise ValueError(f"torch_step: no torch mirror of recipe {recipe.name!r}; "
                         f"known: {sorted(_MIRRORS)}")
    return _MIRRORS[recipe.name](recipe, "cuda" if (device or recipe.device) == "cuda" else "cpu")
