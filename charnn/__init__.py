"""charnn: train recurrent language models on your own text, from the terminal."""

import os as _os

# OpenMP worker threads that spin while waiting collapse when anything else wants the
# cores: measured 1x256 LSTM training at 2 threads on a busy 2-core machine, 380 tok/s
# spinning vs 8-12k tok/s sleeping. Must be set before torch loads; the user's value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
