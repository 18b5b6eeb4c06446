"""SimCLRRecipe ("simclr") and MoCoRecipe ("moco"): contrastive pre-training on the 8x8 digits.

    tinygrad-pt train simclr               # 1-2 min on a 2-core CPU; probe accuracy as it trains
    tinygrad-pt train moco
    tinygrad-pt probe --from runs/simclr   # probe, fine-tune and from-scratch baselines

One step: `batch_size` distinct train images drawn by ``self.rng``, two augmented views of each
(``data.augment.two_views``: random resized crop, shift, gaussian noise, random erasing; drawn by
``self.rng`` too), the contrastive loss, backward, AdamW. No label is used.

Evaluation measures what the encoder learned: a linear probe (multinomial logistic regression
trained with tinygrad_pt on the frozen features of the train split, train/transfer.py) scored on
the test split, beside the same probe on raw pixels; and the contrastive loss on two fixed
augmented views of the test split (the same views at every evaluation, from a generator of their
own). Artifacts: PCA and t-SNE plots of the test features, coloured by class.

MoCo's key encoder is a module of the checkpoint ("encoder_k"); its queue of negatives and the
queue's pointer are extra state, so a resumed run continues with exactly the same negatives.
"""
from __future__ import annotations

import os

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...backend import array_module, to_device
from ...creation import tensor
from ...distributed import gather_rows
from ...nn import functional as F
from ...ops import concatenate
from ...tensor import Tensor
from ...data.augment import two_views
from ...models.contrastive import MLPEncoder, MoCo, ProjectionHead, SimCLR
from ...optim import AdamW
from ..transfer import LinearProbe
from ..recipe import BOOL, NON_NEGATIVE, POSITIVE, POSITIVE_INT, PROBABILITY, int_in, number_in
from .digits import DigitsRecipe

__all__ = ["ContrastiveRecipe", "SimCLRRecipe", "MoCoRecipe"]

EVAL_SEED = 1234  # the test views of the evaluation loss: the same for every run and evaluation
N_CLASSES = 10


class ContrastiveRecipe(DigitsRecipe):
    """The shared part of SimCLR and MoCo: data, views, evaluation and plots.

    Subclasses build ``self.encoder`` (the backbone that the probe reads) and ``self.optimizers``
    in ``build_model``, and define ``contrastive_loss(x1, x2, training)``.
    """

    defaults = {
        # Measured on a busy 2-core CPU with one BLAS thread (benchmarks/results/
        # models_contrastive.md): 45 ms (SimCLR) and 70 ms (MoCo) a step, so 1-2 minutes a run;
        # the probe passes raw pixels and a random-init encoder within 250 steps.
        "steps": 1500,
        "batch_size": 256,      # distinct images per step; each gives two views
        "eval_every": 250,
        "log_every": 10,
        # the encoder 64 -> 256 -> 256 -> 128 (features) and projection head 128 -> 128 -> 64
        "hidden": 256,
        "feat_dim": 128,
        "proj_hidden": 128,
        "proj_dim": 64,
        "temperature": 0.2,     # MoCo's; SimCLR overrides it (below)
        # AdamW
        "lr": 1e-3,
        "weight_decay": 1e-4,
        # the views (data/augment.py two_views)
        "crop_min_scale": 0.6,  # random resized crop covers 60-100% of the image's area
        "max_shift": 1,         # then a shift of up to one pixel each way
        "noise_std": 0.1,       # gaussian noise, pixels in [0, 1]
        "erase_p": 0.5,         # probability of zeroing one 2x2..4x4 rectangle
        # evaluation: the linear probe's full-batch Adam steps
        "probe_steps": 500,
    }

    checks = {**DigitsRecipe.checks, "hidden": POSITIVE_INT, "feat_dim": POSITIVE_INT,
              "proj_hidden": POSITIVE_INT, "proj_dim": POSITIVE_INT, "temperature": POSITIVE,
              "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
              "crop_min_scale": number_in(0, 1, lo_open=True), "max_shift": int_in(0, 7),
              "noise_std": NON_NEGATIVE, "erase_p": PROBABILITY, "probe_steps": POSITIVE_INT}
    size_keys = ("batch_size", "hidden", "feat_dim", "proj_hidden", "proj_dim")

    @classmethod
    def check_config(cls, c):
        # Distinct images per step (draw_batch samples without replacement).
        if c["batch_size"] > cls.N_TRAIN:
            cls.bad(c, "batch_size", f"at most the {cls.N_TRAIN} train images")

    @classmethod
    def encoder_size(cls, c) -> int:
        """The backbone and the projection head."""
        return (cls.mlp_size(cls.PIXELS, c["hidden"], c["hidden"], c["feat_dim"])
                + cls.mlp_size(c["feat_dim"], c["proj_hidden"], c["proj_dim"]))

    @classmethod
    def memory_bytes(cls, c):
        # Two views of each image, and the probe's pass over the whole train split.
        rows = max(2 * c["batch_size"], cls.N_TRAIN)
        widths = (cls.PIXELS, c["hidden"], c["hidden"], c["feat_dim"], c["proj_hidden"],
                  c["proj_dim"])
        return (super().memory_bytes(c) + cls.activation_bytes(rows, *widths)
                + 12 * (2 * c["batch_size"]) ** 2)  # the (2B, 2B) similarity matrix

    # -- building -------------------------------------------------------------------------------
    def build(self):
        self.load_data()
        self.build_model()
        self.raw_probe_acc = None  # computed at the first evaluation (it never changes)
        g = np.random.default_rng(EVAL_SEED)
        self.test_views = self.views(self.x_test, g)

    def make_encoder(self) -> MLPEncoder:
        """A freshly initialised backbone of this config, on the recipe's device."""
        c = self.config
        return MLPEncoder(64, c["hidden"], c["feat_dim"]).to(self.device)

    def make_projection(self) -> ProjectionHead:
        c = self.config
        return ProjectionHead(c["feat_dim"], c["proj_hidden"], c["proj_dim"]).to(self.device)

    # -- one step -------------------------------------------------------------------------------
    def views(self, x: np.ndarray, rng: np.random.Generator):
        """Two augmented views (each (N, 64) float32) of the images x, drawn from rng."""
        c = self.config
        return two_views(x, rng, scale=(c["crop_min_scale"], 1.0), max_shift=c["max_shift"],
                         noise_std=c["noise_std"], erase_p=c["erase_p"])

    def draw_batch(self) -> tuple:
        """(v1, v2): two augmented views of `batch_size` distinct train images."""
        # Distinct images: a duplicate in the batch would be a negative that is really a positive.
        idx = self.rng.choice(len(self.x_train), size=self.config["batch_size"], replace=False)
        return self.views(self.x_train[idx], self.rng)

    def step_on(self, v1: np.ndarray, v2: np.ndarray) -> dict:
        loss = self.contrastive_loss(tensor(v1, device=self.device),
                                     tensor(v2, device=self.device), training=True)
        opt = self.optimizers["adamw"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    # -- evaluation -----------------------------------------------------------------------------
    def probe_accuracy(self, encoder: nn.Module | None) -> float:
        """Test accuracy of a linear probe trained on the train split's frozen features
        (encoder None: on the raw pixels)."""
        probe = LinearProbe(encoder, N_CLASSES, feat_dim=64 if encoder is None else None,
                            device=self.device)
        probe.fit(self.x_train, self.y_train, steps=self.config["probe_steps"])
        return probe.accuracy(self.x_test, self.y_test)

    def evaluate(self) -> dict:
        if self.raw_probe_acc is None:
            self.raw_probe_acc = self.probe_accuracy(None)
        for module in self.modules.values():
            module.eval()
        with no_grad():
            v1, v2 = (tensor(v, device=self.device) for v in self.test_views)
            test_loss = float(self.contrastive_loss(v1, v2, training=False).item())
        for module in self.modules.values():
            module.train()
        return {"probe_acc": self.probe_accuracy(self.encoder), "raw_probe_acc": self.raw_probe_acc,
                "test_loss": test_loss}

    def test_features(self) -> np.ndarray:
        """Encoder features of the test split, (N, feat_dim) NumPy."""
        return LinearProbe(self.encoder, N_CLASSES, device=self.device).features(
            self.x_test).numpy()

    def artifacts(self, out_dir: str) -> list:
        from ..plots import scatter_2d  # matplotlib: imported only when plotting

        feats = self.test_features()
        return [scatter_2d(feats, self.y_test, os.path.join(out_dir, f"features_{method}.png"),
                           method=method, title=f"{self.name}: {label} of the test features")
                for method, label in (("pca", "PCA"), ("tsne", "t-SNE"))]

    def feature_encoder(self):
        """The backbone (before the projection head), the features that transfer."""
        return self.encoder

    def summary(self, metrics: dict) -> str:
        return (f"linear-probe test accuracy {metrics['probe_acc']:.3f} on frozen features "
                f"(raw pixels: {metrics['raw_probe_acc']:.3f}); test {self.loss_name} "
                f"{metrics['test_loss']:.3f}. Fine-tuning vs from scratch: tinygrad-pt probe "
                "--from <run directory>")


class SimCLRRecipe(ContrastiveRecipe):
    """SimCLR: the two views of each image attract, all other images in the batch repel
    (NT-Xent over 2 * batch_size projections)."""

    name = "simclr"
    loss_name = "NT-Xent"
    # On digits 0.1 probed a little better and steadier than 0.2 (0.975-0.978 vs 0.967-0.981
    # over two seeds at 1000-1500 steps) and than SimCLR's ImageNet 0.5 (~0.96).
    defaults = {**ContrastiveRecipe.defaults, "temperature": 0.1}

    @classmethod
    def state_sizes(cls, c):
        return {"model": cls.encoder_size(c)}

    def build_model(self):
        self.encoder = self.make_encoder()
        self.model = SimCLR(self.encoder, self.make_projection())
        self.modules = {"model": self.model}
        self.optimizers = {"adamw": AdamW(self.model.parameters(), lr=self.config["lr"],
                                          weight_decay=self.config["weight_decay"])}

    def contrastive_loss(self, x1, x2, training: bool):
        if training and self.shard_world > 1:
            # Data parallel: NT-Xent needs every image of the global batch as a negative, so the
            # projections are gathered (with their gradient) and every rank scores the whole
            # batch, exactly one process's loss.
            n = x1.shape[0]
            z = self.model(concatenate([x1, x2], axis=0))  # (2n, D) this rank's views
            return F.nt_xent(gather_rows(z[:n]), gather_rows(z[n:]), self.config["temperature"])
        return self.model.loss(x1, x2, self.config["temperature"])


class MoCoRecipe(ContrastiveRecipe):
    """MoCo (v2-style, with the MLP head): queries from the trained encoder, keys from its
    momentum copy, negatives from a queue of past keys."""

    name = "moco"
    loss_name = "InfoNCE"
    defaults = {
        **ContrastiveRecipe.defaults,
        "momentum": 0.99,      # key encoder: theta_k <- m theta_k + (1 - m) theta_q each step
        "queue_size": 1024,    # negatives: the keys of the last 2 steps (2 x 256 when symmetric)
        "symmetric": True,     # both directions: probed 0.975-0.978 at 1000 steps vs 0.961-0.972
    }

    checks = {**ContrastiveRecipe.checks, "momentum": PROBABILITY, "queue_size": POSITIVE_INT,
              "symmetric": BOOL}
    size_keys = ContrastiveRecipe.size_keys + ("queue_size",)

    @classmethod
    def check_config(cls, c):
        super().check_config(c)
        per_step = c["batch_size"] * (2 if c["symmetric"] else 1)
        if c["queue_size"] < per_step:
            cls.bad(c, "queue_size", f"at least the {per_step} keys enqueued each step "
                    "(batch_size, twice when symmetric)")

    @classmethod
    def state_sizes(cls, c):
        return {"encoder_q": cls.encoder_size(c), "encoder_k": cls.encoder_size(c)}

    @classmethod
    def memory_bytes(cls, c):
        # The queue of negatives and the (2B, queue) logits against it.
        return (super().memory_bytes(c) + 4 * c["queue_size"] * c["proj_dim"]
                + 12 * 2 * c["batch_size"] * c["queue_size"])

    def build_model(self):
        c = self.config
        self.encoder = self.make_encoder()
        query = nn.Sequential(self.encoder, self.make_projection())
        self.moco = MoCo(query, momentum=c["momentum"], queue_size=c["queue_size"],
                         temperature=c["temperature"], symmetric=c["symmetric"])
        # The key encoder is a module of its own in the checkpoint; it gets no optimizer.
        self.modules = {"encoder_q": self.moco.encoder_q, "encoder_k": self.moco.encoder_k}
        self.optimizers = {"adamw": AdamW(self.moco.encoder_q.parameters(), lr=c["lr"],
                                          weight_decay=c["weight_decay"])}

    def contrastive_loss(self, x1, x2, training: bool):
        # Evaluation scores against the current queue but neither moves the key encoder nor
        # enqueues: evaluating must not change training.
        return self.moco.loss(x1, x2, update=training)

    def distributed_setup(self) -> None:
        """Every rank enqueues the keys of the whole global batch, in one process's order, so
        the queue (the negatives) stays the same on every rank and equal to a single run's; each
        query's InfoNCE term needs only its own key and the queue, so the loss is then exact."""
        from ...distributed import all_gather

        enqueue, parts = self.moco.enqueue, 2 if self.config["symmetric"] else 1

        def enqueue_global(k):
            # k: (parts * n, dim), this rank's [keys of x_k; keys of x_q]; gathered
            # (world, parts, n, dim) -> (parts, world, n, dim): one process's [all k; all q].
            world = self.shard_world
            xp = array_module(k.data)
            keys = all_gather(xp.ascontiguousarray(k.data))
            keys = keys.reshape(world, parts, -1, keys.shape[-1]).transpose(1, 0, 2, 3)
            enqueue(Tensor._make(xp.ascontiguousarray(keys.reshape(-1, keys.shape[-1]))))
        self.moco.enqueue = enqueue_global

    def extra_state(self) -> dict:
        return {"queue": self.moco.queue.numpy(),
                "queue_ptr": np.asarray(self.moco.queue_ptr, dtype=np.int64)}

    def load_extra_state(self, state: dict) -> None:
        missing = {"queue", "queue_ptr"} - set(state)
        if missing:
            raise ValueError(f"moco: the checkpoint's extra state lacks {sorted(missing)}")
        queue = state["queue"]
        if tuple(queue.shape) != self.moco.queue.shape:
            raise ValueError(f"moco: the checkpoint's queue has shape {tuple(queue.shape)}, the "
                             f"model's {self.moco.queue.shape} (queue_size, dim)")
        self.moco.queue.data[...] = to_device(queue, self.moco.queue.device).astype(
            self.moco.queue.dtype, copy=False)
        self.moco.queue_ptr = int(state["queue_ptr"])
