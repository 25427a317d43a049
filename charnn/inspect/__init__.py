"""What the network learned, and how it learns: surprise, units and gates, the unit finder,
gradient flow and novelty. Plain functions returning dataclasses; nothing here prints.

    activations  the model run over a text, every layer's h, c and gates, chunk by chunk
    surprise     bits for each character, the text's bits/char, the model's top guesses
    probes       signals computed from the text itself (line position, quotes, depth, ...)
    finder       units that track each probe (Pearson r), gate saturation per layer
    session      load a checkpoint, read the text, one pass for all of the above
    gradients    mean ‖∂L_t/∂h_{t-k}‖ for k = 1 .. window
    novelty      how much of a generated text is new, spans found verbatim in the corpus
    webpage      one self-contained HTML page of the results
"""
