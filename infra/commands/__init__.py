"""The dynamo-infra commands, by what they touch (infra/cli.py parses and dispatches)."""
