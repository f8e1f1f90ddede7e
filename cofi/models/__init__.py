"""Where models come from: Whisper base and the local LLMs, assembled from PyPI packages, never fetched at run time."""
