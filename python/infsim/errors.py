"""Errors every part of infsim raises, in a module light enough to import anywhere."""


class CompileError(Exception):
    """A model the compiler cannot turn into an executable; the message says why."""
