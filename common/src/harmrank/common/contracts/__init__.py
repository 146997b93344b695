"""Wire models that more than one harmrank service speaks."""
