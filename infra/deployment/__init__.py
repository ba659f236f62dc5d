"""The resolved deployment: what will run, built once per run from a checked stack, and its checks."""
