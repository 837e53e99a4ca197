"""Self-supervised learning: encoders, objectives (heads, losses), the LightningModule, export."""
