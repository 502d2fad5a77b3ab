"""pylive: live Lambda development for Python on AWS."""

__version__ = "0.1.0"
