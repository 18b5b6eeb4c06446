"""The pre-training model families, one file each, read top to bottom like nanoGPT's model.py.

    ae.py           AutoEncoder, DenoisingAutoEncoder
    vae.py          VAE (reparameterisation, Bernoulli decoder, ELBO)
    gan.py          Generator, Discriminator, GAN (non-saturating loss; D's features reusable),
                    WGANGP (Wasserstein loss with a gradient penalty: a second-order gradient)
    gpt.py          GPT (byte-level, pre-LN, tied embeddings), GPTConfig
    contrastive.py  MLPEncoder, ProjectionHead, SimCLR, MoCo
    probe.py        LinearProbe, fine_tune, train_from_scratch (the transfer experiments)
    classifier.py   DigitsClassifier (scores GAN samples)

Training recipes for each live in tinygrad_pt/train/recipes/.
"""
from .ae import AutoEncoder, DenoisingAutoEncoder
from .classifier import DigitsClassifier
from .contrastive import MLPEncoder, MoCo, ProjectionHead, SimCLR
from .gan import GAN, WGANGP, Discriminator, Generator
from .gpt import GPT, GPTConfig
from .probe import LinearProbe, fine_tune, train_from_scratch
from .vae import VAE

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "VAE", "GAN", "WGANGP", "Generator",
           "Discriminator", "GPT", "GPTConfig", "MLPEncoder", "ProjectionHead", "SimCLR", "MoCo",
           "LinearProbe", "fine_tune", "train_from_scratch", "DigitsClassifier"]
