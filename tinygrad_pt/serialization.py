"""(being written: tg.save / tg.load)"""


def save(*args, **kwargs):
    raise NotImplementedError


def load(*args, **kwargs):
    raise NotImplementedError
