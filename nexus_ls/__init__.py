"""NEXUS: real AI agents doing real development work in git sandboxes."""

__version__ = "0.1.0"
