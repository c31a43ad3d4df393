"""What train.py runs around Hydra: the resolvers conf/train.yaml uses (resolvers.py), the thin
check of the command line before Hydra starts (command_line.py) and the check of the config
Hydra composed, before it writes any folder (check.py)."""
