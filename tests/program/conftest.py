"""The prod render's registrations, recorded once for every program test that reads them."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT

from .registrations import Registrations, record_render


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Registrations:
    return record_render("prod", tmp_path_factory.mktemp("prod") / "prod", PROJECT_ROOT)
