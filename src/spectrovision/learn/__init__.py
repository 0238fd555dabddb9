"""Learn: typed model/predict settings, networks (timm or 1-D backbones + heads), augmentation, losses, the training loop, checkpoints and weights bundles, training progress (what `spectrovision status` reads), TTA prediction, device lease."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "settings": ['ModelSettings', 'PredictSettings'],
    "models": ['HEADS', 'SpectroNet', 'create_model'],
    "nets1d": ['NETS1D'],
    "cost": ['prep_priority', 'render_priority', 'train_priority'],
    "augment": ['CachedAugment', 'resize_time', 'training_width', 'tta_time_sizes'],
    "losses": ['make_loss', 'eval_loss'],
    "imageset": ['ImageSet', 'StackIndex', 'load_image_set', 'label_tensor', 'open_stacks'],
    "loop": ['TrainResult', 'train_model'],
    "checkpoint": ['load_trained'],
    "train": ['run_train'],
    "predict": ['run_predict', 'predict_logits'],
    "lease": ['Lease', 'lease_device'],
    "device": ['DevicePath', 'device_path'],
    "progress": ['progress_record', 'run_status', 'format_status', 'status_from_config'],
})
