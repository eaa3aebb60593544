"""The one exception type users see: its message is a single line that names the bad input."""


class MaskwatchError(Exception):
    """A problem with the user's input or environment, reported as one line (no traceback)."""
