"""FAISS similarity search: index build/load, side table, queries."""
