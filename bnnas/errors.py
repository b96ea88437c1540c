"""One exception type for user-facing problems, so tools can print them as a single line."""


class BNNASError(Exception):
    """Bad input or state a user can fix: the message says what and how."""
