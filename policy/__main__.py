"""The policy pack `pulumi preview --policy-pack policy` runs: every policy in rules.py."""

from pulumi_policy import PolicyPack

# Pulumi runs this directory as a script (runpy), so its modules import as top-level ones.
from rules import POLICIES

PolicyPack(name="dynamo-trtllm-security", policies=POLICIES)
