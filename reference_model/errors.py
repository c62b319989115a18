"""Errors that mean "the input is wrong", reported to the user as one actionable line."""


class InputError(ValueError):
    """Bad user input (a file, a flag, a checkpoint): the message names it and what to do."""
