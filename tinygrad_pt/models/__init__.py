"""The pre-training model families, one file each, read top to bottom like nanoGPT's model.py.

    ae.py           AutoEncoder, DenoisingAutoEncoder
    vae.py          VAE (reparameterisation, Bernoulli decoder, ELBO)
    gan.py          Generator, Discriminator, GAN (non-saturating loss; D's features reusable)
    gpt.py          GPT (byte-level, pre-LN, tied embeddings), GPTConfig
    contrastive.py  MLPEncoder, ProjectionHead, SimCLR, MoCo
    classifier.py   DigitsClassifier (scores GAN samples)

Training recipes for each live in tinygrad_pt/train/recipes/; whatever trains (the linear probe,
fine-tuning: train/transfer.py; the digits judge: train/classifier.py) lives in train/ too.
"""
from .ae import AutoEncoder, DenoisingAutoEncoder
from .classifier import DigitsClassifier
from .contrastive import MLPEncoder, MoCo, ProjectionHead, SimCLR
from .gan import GAN, Discriminator, Generator
from .gpt import GPT, GPTConfig
from .vae import VAE

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "VAE", "GAN", "Generator", "Discriminator",
           "GPT", "GPTConfig", "MLPEncoder", "ProjectionHead", "SimCLR", "MoCo", "DigitsClassifier"]
