"""harmrank generator service: the small models behind Text Generation Inference."""
