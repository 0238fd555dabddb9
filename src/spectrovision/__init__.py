"""spectrovision: mass-spectrometry runs as images, timm CNN ensembles, Snakemake workflow."""

__version__ = "0.1.0"
