"""The Hugging Face token only where a worker downloads from the Hub: a namespace whose weights
come from the cache holds no copy, and a cached slot's workers do not read it."""

from __future__ import annotations

from tests.conftest import Rendered
from tests.dgd_layouts import services


def test_the_token_lives_only_where_weights_are_downloaded(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    with_token = {
        s["metadata"]["namespace"]
        for s in prod.objects("Secret")
        if s["metadata"]["name"] == "hf-token-secret"
    }
    assert with_token == {"qwen3-0-6b"}  # the only model of prod pulled from Hugging Face
    for dgd in prod.objects("DynamoGraphDeployment"):
        downloads = dgd["metadata"]["namespace"] in with_token
        for name, view in services(dgd).items():
            reads = any(
                ref.get("secretRef", {}).get("name") == "hf-token-secret"
                for ref in view.container.env_from
            )
            # workers fetch the weights, the frontend the tokenizer and config
            assert reads == downloads, (dgd["metadata"]["name"], name)
