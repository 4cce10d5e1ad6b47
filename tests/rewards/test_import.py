"""`import rewards` (and every submodule) works where torch, transformers and trl cannot be imported."""

import pkgutil
import subprocess
import sys

import rewards

SCRIPT = """
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "trl"):
            raise ImportError("blocked for this test: " + name)
        return None

sys.meta_path.insert(0, Block())
import rewards
for mod in pkgutil.walk_packages(rewards.__path__, "rewards."):
    importlib.import_module(mod.name)
heavy = [m for m in ("torch", "transformers", "trl", "datasets", "math_verify") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""


def test_import_without_torch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_submodule_is_covered():
    names = {m.name for m in pkgutil.walk_packages(rewards.__path__, "rewards.")}
    assert {
        "rewards.tasks.sudoku",
        "rewards.tasks.countdown",
        "rewards.tasks.gsm8k",
        "rewards.tasks.math",
        "rewards.data.loaders",
        "rewards.data.synthetic",
    } <= names
