"""CDK constructs for pylive apps: import these in the app's stacks module."""

from pylive.constructs.api import Api
from pylive.constructs.function import Function

__all__ = ["Api", "Function"]
