"""Data layer: scan, decode, resample, clip cache, labelled sets, demo corpus."""
