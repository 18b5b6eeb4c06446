"""The pre-training model families, one file each, read top to bottom like nanoGPT's model.py.

    ae.py           AutoEncoder, DenoisingAutoEncoder
    vae.py          VAE (reparameterisation, Bernoulli decoder, ELBO)
    gan.py          Generator, Discriminator, GAN (non-saturating loss; D's features reusable),
                    WGANGP (Wasserstein loss with a gradient penalty: a second-order gradient)
    gpt.py          GPT (byte-level, pre-LN, tied embeddings), GPTConfig
    contrastive.py  MLPEncoder, ProjectionHead, SimCLR, MoCo
    classifier.py   DigitsClassifier (scores GAN samples)

Training recipes for each live in tinygrad_pt/train/recipes/; whatever trains (the linear probe,
fine-tuning: train/transfer.py; the digits judge: train/classifier.py) lives in train/ too.
"""
from .ae import AutoEncoder, DenoisingAutoEncoder
from .classifier import DigitsClassifier
from .contrastive import MLPEncoder, MoCo, ProjectionHead, SimCLR
from .gan import GAN, WGANGP, Discriminator, Generator
from .gpt import GPT, GPTConfig
from .vae import VAE

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "VAE", "GAN", "WGANGP", "Generator",
           "Discriminator", "GPT", "GPTConfig", "MLPEncoder", "ProjectionHead", "SimCLR", "MoCo",
           "LinearProbe", "fine_tune", "train_from_scratch", "DigitsClassifier"]

# The transfer tools are public here (tg.models.LinearProbe, the design's API), but they run
# training loops, so their code lives in train/transfer.py, a floor above. They are looked up on
# first use rather than imported: importing tinygrad_pt.models never imports the train package.
_FROM_TRAIN = {"LinearProbe", "fine_tune", "train_from_scratch"}


def __getattr__(name):
    if name in _FROM_TRAIN:
        from ..train import transfer
        return getattr(transfer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
