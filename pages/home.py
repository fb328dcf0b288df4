"""Home: what the product is and what it is not. The Diagnose, Dataset and Train pages follow."""

import streamlit as st

from brat import DISCLAIMER, __version__

st.title("BraTum Scans")
st.warning(DISCLAIMER, icon=":material/warning:")
st.markdown(
    f"""
Version {__version__}. Classify brain MRI slices into glioma, meningioma, pituitary tumour or no
tumour, and see why with a heatmap. The analysis pages are being built; today the `brat` command
line scans datasets for duplicates and leaks and writes leak-free splits:

```
python -m brat scan DATA --json scan.json
python -m brat split DATA --out manifest.csv
```
"""
)
