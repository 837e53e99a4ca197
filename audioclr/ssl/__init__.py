"""Self-supervised learning: encoders, heads, losses, the LightningModule, export."""
