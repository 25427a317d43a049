"""Turning a model's next-token scores into text: LM sampling (``sampling``) and chat replies (``replies``)."""
