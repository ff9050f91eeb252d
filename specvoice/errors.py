"""The one exception type users see: its message is printed as a single line, no traceback."""


class SpecvoiceError(Exception):
    """A problem with the user's input or environment that specvoice can explain in one line."""
