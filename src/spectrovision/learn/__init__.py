"""Learn: models (timm backbones + heads), augmentation, losses, the training loop, TTA prediction, device lease."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "augment": ['resize_time', 'random_time_width', 'training_width', 'tta_time_sizes', 'time_warp', 'mixup', 'mixup_with_meta'],
    "lease": ['Lease', 'visible_devices', 'lock_dir', 'lease_device'],
    "losses": ['smooth_binary', 'bce_loss', 'focal_loss', 'cross_entropy_loss', 'make_loss', 'eval_loss', 'sed_frame_loss'],
    "models": ['InputAdapter', 'PoolHead', 'TimeAvgHead', 'SedHead', 'MetadataBranch', 'SpectroNet', 'backbone_channels', 'create_model', 'load_backbone_weights', 'model_summary'],
    "predict": ['predict_logits', 'logit_frame', 'run_predict', 'bundle_meta'],
    "train": ['ImageSet', 'load_image_set', 'label_tensor', 'lr_at', 'seed_everything', 'settings_fingerprint', 'TrainResult', 'evaluate', 'recalibrate_batch_norm', 'cuda_options', 'train_model', 'curve_figure', 'run_train', 'fold_metadata', 'load_trained'],
})
