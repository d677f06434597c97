"""A tiny calculator with one obvious bug, for the NEXUS demo."""


def add(a, b):
    return a - b


def multiply(a, b):
    return a * b
