from pathlib import Path

import pytest

from pipelines import usecase
from pipelines.errors import ProjectNotFoundError, UseCaseError
from pipelines.project import Project

REPO = Path(__file__).resolve().parents[2]


def test_shipped_use_cases_load():
    project = Project(REPO)
    assert usecase.available(project) == ["marketing", "stock"]
    stock = usecase.load(project, "stock")
    assert stock.key == ("Ticker", "Date")
    assert stock.order.previous_column == "previous Date of the same Ticker"
    assert [u.name for u in usecase.resolve(project, "all")] == ["marketing", "stock"]


def test_unknown_use_case_names_the_known_ones():
    with pytest.raises(UseCaseError, match=r"unknown use case 'nope' \(available: marketing, stock\)"):
        usecase.load(Project(REPO), "nope")


def test_project_is_found_from_a_subfolder():
    assert Project.find(REPO / "pipelines" / "usecases").root == REPO


def test_outside_a_project(tmp_path):
    with pytest.raises(ProjectNotFoundError, match="data.dvc"):
        Project.find(tmp_path)
