"""Image-level tools without training: crop embeddings, foreground masks, perceptual hashes."""
