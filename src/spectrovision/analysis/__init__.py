"""Analysis: Grad-CAM++ explanations, UMAP embeddings, novelty scores."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "embed": ['penultimate_features', 'umap_2d', 'embedding_table', 'embedding_plot', 'run_embed'],
    "explain": ['LogitModel', 'find_target_layer', 'class_probabilities', 'gradcam_maps', 'choose_examples', 'gradcam_figure', 'peak_cell', 'run_explain'],
    "novelty": ['ConvAutoencoder', 'train_autoencoder', 'reconstruction_error', 'binary_entropy', 'mean_entropy', 'member_disagreement', 'descending_rank', 'novelty_table', 'aligned_logits', 'gallery_figure', 'run_novelty'],
})
