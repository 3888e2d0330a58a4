"""Errors meant for people: the CLI prints their message, never a traceback."""


class SparringError(Exception):
    """Something the user asked for cannot be done; the message says what to change."""
