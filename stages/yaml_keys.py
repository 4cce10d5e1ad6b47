"""YAML config files read strictly: a key given twice in one mapping is an error naming the file, key and
line (plain YAML keeps the last one without a word)."""

from __future__ import annotations

from pathlib import Path


class DuplicateKeyError(ValueError):
    """A mapping in a YAML file names one key twice."""


def _unique_key_loader(path: str | Path):
    """A yaml SafeLoader whose mappings refuse a repeated key (plain YAML silently keeps the last one)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(
                        f"{path}:{line}: duplicate key {key!r} (first at line {seen[key]}); "
                        "a key may appear once in a mapping"
                    )
                seen[key] = line
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_yaml(text: str, path: str | Path):
    """`yaml.safe_load` that refuses duplicate keys, naming `path`, the key and its line."""
    import yaml

    return yaml.load(text, Loader=_unique_key_loader(path))  # noqa: S506 (a SafeLoader subclass)
