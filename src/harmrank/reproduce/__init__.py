"""`harmrank reproduce`: rebuild the study's analysis from its public data."""
