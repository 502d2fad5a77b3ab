"""What pylive ships into Lambda: the files of :mod:`pylive.in_lambda` (plus ``pylive.db``,
the name functions import it by), and the relay's two handler modules. Light on purpose: the
runner and the app's environment builder import it too."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pylive
import pylive.in_lambda

PACKAGE_DIR = Path(pylive.__file__).resolve().parent
SHIPPED_DIR = Path(pylive.in_lambda.__file__).resolve().parent


def handlers_dir() -> Path:
    """Where ``stub.py`` and ``router.py``, the relay's Lambda handler modules, are."""
    return SHIPPED_DIR / "handlers"


def runtime_files() -> list[tuple[Path, PurePosixPath]]:
    """Each shipped module: its file here, and its path in a bundle (``pylive/...``)."""
    files = [PACKAGE_DIR / "__init__.py", PACKAGE_DIR / "db.py"]
    files += sorted(p for p in SHIPPED_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    return [(path, PurePosixPath("pylive", *path.relative_to(PACKAGE_DIR).parts)) for path in files]
