"""Using a trained model: the loaded classifier, its ONNX Runtime fast path, heatmaps, the
not-a-brain-MRI and view-plane checks, `brat.analyze`, rendering, PDF reports and export."""
