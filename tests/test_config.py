"""The grader's configuration: the documented variables read once into a frozen GraderConfig (unit, no sandbox)."""

import dataclasses
from pathlib import Path

import pytest

from autograder.assignment import DEV_SECRET, load_assignment
from autograder.config import DEFAULT_SANDBOX_USER, GraderConfig, from_environment

PART1 = load_assignment("hw4_part1")


def test_every_documented_variable_is_read():
    config = from_environment({"AUTOGRADER_SECRET_HW4_PART1": " own ", "AUTOGRADER_SECRET": "shared",
                               "AUTOGRADER_RUBRIC": "/x/rubric.yml", "AUTOGRADER_DISABLE": "bwrap,,cgroups",
                               "AUTOGRADER_SANDBOX_USER": "agbox3", "AUTOGRADER_HOME": "/tmp/tree"})
    assert config.secret_for("hw4_part1") == ("own", "AUTOGRADER_SECRET_HW4_PART1")
    assert config.secret_for("hw4_part2") == ("shared", "AUTOGRADER_SECRET")  # the fallback for every part
    assert config.rubric == Path("/x/rubric.yml") and config.disabled == {"bwrap", "cgroups"}
    assert (config.sandbox_user, config.home) == ("agbox3", Path("/tmp/tree"))


def test_an_empty_environment_is_the_default_configuration():
    assert from_environment({}) == GraderConfig()
    assert from_environment({"AUTOGRADER_SECRET": "  ", "AUTOGRADER_SANDBOX_USER": ""}) == GraderConfig()
    assert GraderConfig().sandbox_user == DEFAULT_SANDBOX_USER and GraderConfig().secret_for("hw4_part1") is None


def test_the_assignment_reads_its_secret_and_rubric_from_the_config_it_is_given(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET_HW4_PART1", "in the environment only")
    monkeypatch.setenv("AUTOGRADER_RUBRIC", "/nowhere.yml")
    given = GraderConfig(secrets={"hw4_part1": "given"}, rubric=Path("/elsewhere.yml"))
    assert PART1.secret(given) == ("given", False) and PART1.rubric_path(given) == Path("/elsewhere.yml")
    if not (PART1.folder / "secret").exists():  # the environment is read only where an entry point reads it
        assert PART1.secret(GraderConfig()) == (DEV_SECRET, True)
    assert PART1.rubric_path(GraderConfig()) == PART1.folder / "rubric.yml"


def test_the_config_is_frozen_all_the_way_down():
    config = GraderConfig(secrets={"hw4_part1": "s"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sandbox_user = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.secrets["hw4_part1"] = "changed"  # type: ignore[index]
    with pytest.raises(ValueError, match="disabled"):
        GraderConfig(disabled={"bwrap"})  # type: ignore[arg-type]
