"""Text in: corpus reading, tokenizers, the cached token array and batching."""
