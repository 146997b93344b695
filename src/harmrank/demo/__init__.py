"""Demonstration backends: a TGI-speaking model server and an OpenAI-compatible judge server.

They are real HTTP servers speaking the real wire formats, so ``harmrank demo`` exercises the
production clients, retries, parsing and job records; only the text they produce is made up
(harmless, deterministic, carrying a visible harm signal). Never use them for measurements.
"""
