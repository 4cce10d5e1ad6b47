"""gift: the diffusion-LM core (forward process, GIFT objective, sampler, model adapters, checkpoints).

Submodules are imported on demand; `import gift` itself is cheap.
"""

__version__ = "0.1.0"
