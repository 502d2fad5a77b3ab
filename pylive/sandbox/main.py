"""The worker host's entry point, started by path on the app's interpreter (which need not
have pylive installed)::

    python /path/to/pylive/sandbox/main.py <control-fd> [<preload-module> ...]

It loads this folder as the private package ``_pylive_sandbox``, so none of its module
names can shadow the app's, and runs the fork-server (:mod:`.fork_server`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys

PACKAGE = "_pylive_sandbox"


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    init = os.path.join(here, "__init__.py")
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[here])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    fork_server = importlib.import_module(f"{PACKAGE}.fork_server")
    fork_server.run_zygote(socket.socket(fileno=int(sys.argv[1])), sys.argv[2:])


if __name__ == "__main__":
    main()
