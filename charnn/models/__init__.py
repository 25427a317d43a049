"""Neural models: the stacked-RNN language model and the seq2seq chat model."""
