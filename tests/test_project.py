"""The project folder decides where relative paths live, whatever the working directory of the
process (a code server, a run or a step started by Dagster somewhere else)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

import sf_assets
from sf_assets.connections import staging_from_env
from sf_assets.definitions import load_definitions
from sf_assets.project import ProjectNotFound, project_dir
from sf_assets.specs import SpecError, syncs_dir
from sf_assets.state import DuckDBStateStore, PostgresStateStore

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is not the project."""
    folder = tmp_path / "somewhere-else"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("SF_ASSETS_PROJECT_DIR", "SF_ASSETS_STAGING", "SF_ASSETS_SYNCS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SF_ASSETS_STATE_URL", raising=False)
    return folder


def test_relative_paths_resolve_against_the_project_folder_not_the_cwd(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "syncs").mkdir(parents=True)
    monkeypatch.setenv("SF_ASSETS_PROJECT_DIR", str(project))
    monkeypatch.setenv("SF_ASSETS_STAGING", "state/staging.duckdb")
    store = staging_from_env()
    assert isinstance(store, DuckDBStateStore)
    assert Path(store.path) == project / "state" / "staging.duckdb"
    assert syncs_dir() == project / "syncs"


def test_an_in_repo_install_finds_its_checkout(elsewhere: Path) -> None:
    assert project_dir() == REPOSITORY
    assert syncs_dir() == REPOSITORY / "syncs"
    store = staging_from_env()
    assert isinstance(store, DuckDBStateStore)
    assert Path(store.path) == REPOSITORY / ".sf-assets" / "staging.duckdb"


def test_an_installed_package_without_a_project_asks_for_the_variable(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "site-packages" / "sf_assets" / "__init__.py"
    monkeypatch.setattr(sf_assets, "__file__", str(installed))
    with pytest.raises(ProjectNotFound, match="set SF_ASSETS_PROJECT_DIR"):
        project_dir()


def test_a_missing_syncs_folder_is_an_error_not_an_empty_code_location(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_ASSETS_PROJECT_DIR", str(tmp_path))
    with pytest.raises(
        SpecError, match=r"syncs folder .*syncs does not exist.*SF_ASSETS_SYNCS_DIR"
    ):
        load_definitions()


def test_a_state_url_selects_the_shared_database_without_showing_its_password(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_ASSETS_STATE_URL", "postgresql://sync:s3cret@db.internal:5432/ops")
    assert isinstance(staging_from_env(), PostgresStateStore)
    assert staging_from_env().url == dg.EnvVar("SF_ASSETS_STATE_URL")  # resolved in the run
    store = staging_from_env(resolved=True)
    assert store.location == "postgresql://sync@db.internal:5432/ops [sf_assets]"
    assert "s3cret" not in store.location
    monkeypatch.setenv("SF_ASSETS_STATE_URL", "postgresql://db.internal/ops?password=s3cret&port=6")
    assert staging_from_env(resolved=True).location == (
        "postgresql://db.internal/ops?port=6 [sf_assets]"
    )


def test_a_state_url_that_is_not_postgresql_is_refused(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_ASSETS_STATE_URL", "mysql://db/ops")
    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        staging_from_env()
