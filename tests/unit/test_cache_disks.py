"""The model cache lives where the disks are, and its quota fits the disk behind its path."""

from __future__ import annotations

import copy

import pytest

from infra.deployment.checked import check_stack
from infra.stack.errors import StackConfigError
from infra.stack.instances import CATALOG, RAID0_MOUNT
from tests.conftest import Project, Rendered


def test_prods_caches_sit_on_the_nvme_array(rendered: dict[str, Rendered]) -> None:
    runtimes = rendered["prod"].objects("AlluxioRuntime")
    assert runtimes
    for runtime in runtimes:
        (level,) = runtime["spec"]["tieredstore"]["levels"]
        assert level["path"].startswith(f"{RAID0_MOUNT}/")


def test_the_deepseek_cache_does_not_fit_the_root_volume(project: Project) -> None:
    """DeepSeek-R1's 794 GiB quota on prod's 500 GiB root volume, as it was before."""
    config = project.stack_config("prod")
    pools = config["dynamo-trtllm:nodePools"]
    pools[0]["localNvmeRaid0"] = False
    project.write_stack("prod", config)
    with pytest.raises(StackConfigError) as caught:
        check_stack(project.root, "prod")
    (issue,) = [i for i in caught.value.issues if "deepseek-r1" in i.message]
    assert issue.path == "nodePools[0].rootVolumeGib"
    assert "needs 794 GiB" in issue.message and "400 GiB" in issue.message
    pools[0]["rootVolumeGib"] = 1000
    config["dynamo-trtllm:nodePools"] = copy.deepcopy(pools)
    project.write_stack("prod", config)
    check_stack(project.root, "prod")


def test_nvme_capacity_is_in_the_catalog() -> None:
    assert CATALOG["p5.48xlarge"].nvme_gb == 30720
    assert all(entry.nvme_gb > 0 for entry in CATALOG.values() if entry.local_nvme)


def test_a_cache_path_you_set_is_kept(project: Project) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:modelCache"]["path"] = "/data/cache"
    project.write_stack("prod", config)
    assert check_stack(project.root, "prod").config.model_cache.path == "/data/cache"
