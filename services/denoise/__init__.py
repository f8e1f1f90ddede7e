"""Denoise stage: spectral gating on CPU (`spectral`) or an external denoise server (`http`)."""
