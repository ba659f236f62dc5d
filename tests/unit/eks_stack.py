"""helpers.BASE as an EKS stack states it since its endpoint access and admins are explicit."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.helpers import BASE as SHARED_BASE

DEPLOY_ROLE = "arn:aws:iam::123456789012:role/deploy"
EKS_ACCESS = {
    "endpointAccess": {"mode": "public-and-private", "publicAccessCidrs": ["203.0.113.0/24"]},
    "adminPrincipalArns": [DEPLOY_ROLE],
}
BASE: dict[str, Any] = {**SHARED_BASE, "cluster": {**SHARED_BASE["cluster"], **EKS_ACCESS}}


def values(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(BASE) | copy.deepcopy(changes)
