"""Types at the target seam: each target's settings type is the one its implementation takes (mypy checks it
through ``Implementation[<settings>]`` in each target's ``__init__``; this checks every registered target at
run time, so a target registered without that line is caught too), and the plan keeps the spec's Literals."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

from dyncc.compiler.graph import RouterInfo
from dyncc.compiler.plan import DeploymentPlan, FrontendPlan, PoolPlan
from dyncc.spec.model import CoreSpec, Infrastructure, Role, Router, RouterMode
from dyncc.targets import targets
from dyncc.targets.base import Target


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
def test_the_implementation_takes_the_settings_the_target_declares(target):
    module = importlib.import_module(target.implementation)
    for name in ("check", "render"):
        settings = list(inspect.signature(getattr(module, name)).parameters.values())[1]
        assert settings.annotation in (target.settings_model.__name__, target.settings_model), (target.name, name)


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
def test_settings_gives_the_section_of_the_declared_type(target):
    from dyncc.deployment import deployment_model

    spec = deployment_model().model_construct()
    spec = spec.model_copy(update={target.settings_key: target.settings_model()})
    assert isinstance(target.settings(spec), target.settings_model)
    other = next(t for t in targets() if t.settings_model is not target.settings_model)
    wrong = spec.model_copy(update={target.settings_key: other.settings_model()})
    with pytest.raises(TypeError):
        target.settings(wrong)


def test_the_declaration_is_generic_in_its_settings():
    assert typing.get_origin(Target[CoreSpec]) is Target


# The plan's fields that carry a spec choice, and the spec field whose Literal each keeps.
KEPT = [
    (DeploymentPlan, "worker_runtime", CoreSpec, "worker_runtime"),
    (DeploymentPlan, "request_plane", CoreSpec, "request_plane"),
    (DeploymentPlan, "on_worker_exit", CoreSpec, "on_worker_exit"),
    (DeploymentPlan, "infra_node", Infrastructure, "node"),
    (FrontendPlan, "router_mode", Router, "mode"),
]


@pytest.mark.parametrize(("plan_class", "field", "spec_class", "spec_field"), KEPT, ids=[k[1] for k in KEPT])
def test_the_plan_keeps_the_spec_literal(plan_class, field, spec_class, spec_field):
    kept = typing.get_type_hints(plan_class)[field]
    spec = spec_class.model_fields[spec_field].annotation
    assert kept == spec and "Literal[" in repr(kept)


def test_roles_and_router_modes_are_literals_through_the_graph():
    assert typing.get_type_hints(PoolPlan)["role"] == Role
    assert typing.get_type_hints(RouterInfo)["mode"] == RouterMode
