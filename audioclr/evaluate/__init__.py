"""Evaluation: frozen embeddings, probes, baselines, retrieval, reports."""
