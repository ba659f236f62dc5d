"""The stack file: its reader, its typed schema, and the checks a config can be given on its own."""
