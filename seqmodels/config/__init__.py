"""The config's meaning: the keys with a meaning of their own (keys.py) and the checks of a
composed config's types, ranges and keys (schema.py)."""
