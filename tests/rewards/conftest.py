"""Make `import rewards` find the package, not this test folder.

tests/conftest.py puts tests/ on sys.path (pytest's default prepend import mode), and this folder has
no __init__.py, so `rewards` would resolve to it as a namespace package ahead of the editable install.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_loaded = sys.modules.get("rewards")
if _loaded is not None and getattr(_loaded, "__file__", None) is None:
    del sys.modules["rewards"]  # the namespace package made of this folder
