"""Measuring models: metrics, held-out evaluation, per-plane comparison, heatmap localisation,
model cards and the speed benchmark."""
