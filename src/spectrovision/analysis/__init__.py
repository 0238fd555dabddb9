"""Analysis: typed explain/embed/novelty settings, Grad-CAM++ explanations, UMAP embeddings, novelty scores."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "settings": ['ExplainSettings', 'EmbedSettings', 'NoveltySettings'],
    "explain": ['gradcam_maps', 'run_explain'],
    "embed": ['umap_2d', 'run_embed'],
    "novelty": ['ConvAutoencoder', 'novelty_table', 'run_novelty'],
})
