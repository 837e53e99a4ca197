"""End-to-end journeys that chain the other packages: the demo and the real-recording benchmark."""
