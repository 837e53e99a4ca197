"""audioclr: self-supervised contrastive pretraining for audio.

Pretrain an encoder on unlabeled audio (SimCLR / CPC), evaluate it with linear probes
next to honest baselines, and query similar tracks with FAISS.
"""

__version__ = "0.1.0"
