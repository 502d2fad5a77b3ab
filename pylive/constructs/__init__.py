"""CDK constructs for pylive apps: import these in the app's stacks module."""

from pylive.constructs.api import Api
from pylive.constructs.database import Database
from pylive.constructs.function import Function
from pylive.constructs.network import Network
from pylive.constructs.vpn import ClientVpn

__all__ = ["Api", "ClientVpn", "Database", "Function", "Network"]
