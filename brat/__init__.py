"""BraTum Scans: brain MRI slice classification with explanations. Research use only."""

from brat.labels import CLASSES, PLANES, TUMOUR_CLASSES

__version__ = "0.1.0"
DISCLAIMER = (
    "Research use only. BraTum Scans is not a medical device and must not be used for diagnosis "
    "or treatment decisions."
)

__all__ = ["CLASSES", "DISCLAIMER", "PLANES", "TUMOUR_CLASSES", "__version__", "analyze"]


def __getattr__(name: str):
    # `brat.analyze` loads TensorFlow, so it is imported on first use, not with the package.
    if name == "analyze":
        from brat.inference.analysis import analyze

        return analyze
    raise AttributeError(f"module 'brat' has no attribute {name!r}")
