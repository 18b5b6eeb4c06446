"""Domain-adversarial training (DANN) and CORAL: adapting a classifier to unlabelled target data.

Reference: Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand, Lempitsky,
"Domain-Adversarial Training of Neural Networks" (JMLR 2016): one feature extractor, a label head
trained on the labelled source domain, and a domain head that tells source features from target
features. Between the features and the domain head sits a gradient-reversal layer: the identity
going forward, -lambda times the gradient going back. So one backward pass trains the domain head
to separate the domains while it pushes the features to make them indistinguishable.

    features = encoder(x)
    label_logits = label_head(features)                        # source rows: cross-entropy
    domain_logits = domain_head(grad_reverse(features, lam))   # all rows: source 0 / target 1

CORAL (Sun & Saenko, "Deep CORAL", 2016) is here too: the squared Frobenius distance between the
source and target feature covariances, composed of differentiable ops.
"""
from __future__ import annotations

from .. import nn
from ..autograd import Function
from ..tensor import Tensor

__all__ = ["GradientReversal", "grad_reverse", "DANN", "coral_loss"]


class GradientReversal(Function):
    """y = x going forward; dL/dx = -lam * dL/dy going back (lam >= 0, a constant).

    Not a gradient of any function of x: it is what makes the features play against the
    domain classifier within one ordinary backward pass.
    """

    saved_inputs = ()  # backward reads no input: it serves create_graph as written

    def forward(self, x, lam):
        self.lam = lam
        return x.copy()  # a new array: the output must not alias the input (in-place ops)

    def backward(self, grad):
        return grad * (-self.lam)  # a Python float: the gradient keeps grad's dtype


def grad_reverse(x: Tensor, lam: float = 1.0) -> Tensor:
    """The gradient-reversal layer: x unchanged, its gradient multiplied by -lam.

    >>> import tinygrad_pt as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> (grad_reverse(x, 0.5) * 3.0).sum().backward()
    >>> x.grad.numpy().tolist()
    [-1.5, -1.5]
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise ValueError(f"grad_reverse: lam must be a number >= 0, got {lam!r}")
    return GradientReversal.apply(x, lam=float(lam))


class DANN(nn.Module):
    """DANN(encoder, feat_dim, n_classes, domain_hidden=64): features shared by a label head and,
    through the gradient-reversal layer, a domain head.

    encoder: (N, D) -> (N, feat_dim); label_head: Linear(feat_dim, n_classes); domain_head:
    Linear(feat_dim, domain_hidden) -> ReLU -> Linear(domain_hidden, 1), one logit "is target".
    """

    def __init__(self, encoder: nn.Module, feat_dim: int, n_classes: int,
                 domain_hidden: int = 64, label_head: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.label_head = label_head if label_head is not None else nn.Linear(feat_dim, n_classes)
        self.domain_head = nn.Sequential(nn.Linear(feat_dim, domain_hidden), nn.ReLU(),
                                         nn.Linear(domain_hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Label logits (N, n_classes): the adapted classifier."""
        return self.label_head(self.encoder(x))

    def logits(self, x: Tensor, lam: float):
        """(label logits (N, C), domain logits (N,)) for one batch, the domain head behind the
        gradient-reversal layer of strength lam."""
        h = self.encoder(x)                                         # (N, feat_dim)
        d = self.domain_head(grad_reverse(h, lam))                  # (N, 1)
        return self.label_head(h), d.reshape(d.shape[0])


def coral_loss(hs: Tensor, ht: Tensor) -> Tensor:
    """||C_s - C_t||_F^2 / (4 d^2): the distance between the covariances (d, d) of source
    features hs (Ns, d) and target features ht (Nt, d) (Deep CORAL's loss)."""
    if hs.ndim != 2 or ht.ndim != 2 or hs.shape[1] != ht.shape[1]:
        raise ValueError(f"coral_loss: expected features (Ns, d) and (Nt, d), got {hs.shape} and "
                         f"{ht.shape}")
    d = hs.shape[1]

    def cov(h):
        c = h - h.mean(axis=0, keepdims=True)
        return (c.T @ c) / float(max(h.shape[0] - 1, 1))  # (d, d)

    diff = cov(hs) - cov(ht)
    return (diff * diff).sum() / float(4 * d * d)
