"""Text in: corpus reading, tokenizers, the cached token array and LM batches, dialogues and chat batches."""
