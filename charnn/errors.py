"""The one exception type a user can cause; the CLI prints its message and exits non-zero."""


class CharnnError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""
