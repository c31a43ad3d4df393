"""The config: the keys with a meaning of their own (keys.py), the resolvers conf/ uses
(resolvers.py), the checks of a composed config (schema.py) and the thin check of the command
line before Hydra starts (command_line.py)."""
