"""Training: the model and its configuration, augmentation, the evidence loss, resumable training
runs (from the command line or in the app's background), and cross-validation."""
