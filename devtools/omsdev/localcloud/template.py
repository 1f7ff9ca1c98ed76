"""Reads the SAM template the way CloudFormation does, for the local cloud.

Short-form intrinsic tags become their long form; `Globals.Function` is merged into every
function; `Resolver` evaluates Ref/GetAtt/Sub/Join/If... against the provisioned stack. Nothing
about resources or wiring is known here that the template does not say.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
_LIST_TAGS = {"GetAtt"}


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else ("Condition" if suffix == "Condition" else f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix in _LIST_TAGS:
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_dir: Path
    timeout: int
    memory: int
    environment: dict
    events: dict
    reserved_concurrency: int | None

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def entry_point(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class Template:
    path: Path
    body: dict
    parameter_overrides: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, parameter_overrides: dict | None = None) -> "Template":
        path = Path(path).resolve()
        body = yaml.load(path.read_text(), Loader=_Loader)
        return cls(path, body, dict(parameter_overrides or {}))

    @property
    def resources(self) -> dict:
        return self.body.get("Resources", {})

    def parameters(self) -> dict:
        values = {}
        for name, spec in self.body.get("Parameters", {}).items():
            value = self.parameter_overrides.get(name, spec.get("Default"))
            if value is None:
                raise ValueError(f"template parameter {name} has no default and no override")
            values[name] = str(value)
        unknown = set(self.parameter_overrides) - set(values)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        return values

    def functions(self) -> list[FunctionSpec]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        specs = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = resource["Properties"]
            environment = copy.deepcopy(globals_.get("Environment", {}).get("Variables", {}))
            environment.update(props.get("Environment", {}).get("Variables", {}))
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    handler=props.get("Handler", globals_.get("Handler")),
                    code_dir=(self.path.parent / props.get("CodeUri", globals_.get("CodeUri", "."))).resolve(),
                    timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                    memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                    environment=environment,
                    events=props.get("Events", {}),
                    reserved_concurrency=props.get("ReservedConcurrentExecutions"),
                )
            )
        return specs

    def function(self, logical_id: str) -> FunctionSpec:
        for spec in self.functions():
            if spec.logical_id == logical_id:
                return spec
        names = ", ".join(spec.logical_id for spec in self.functions())
        raise KeyError(f"no function {logical_id!r} in the template; it has: {names}")


class Resolver:
    """Evaluates intrinsic functions; `refs`/`attributes` come from the provisioned stack."""

    def __init__(self, template: Template, stack_name: str, refs: dict, attributes: dict):
        self.template = template
        self.stack_name = stack_name
        self.refs = refs
        self.attributes = attributes  # (logical id, attribute) -> value
        self.parameters = template.parameters()

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def ref(self, name: str):
        if name in self.parameters:
            return self.parameters[name]
        if name == "AWS::NoValue":
            return None
        pseudo = self.pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"cannot resolve Ref {name}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.body.get("Conditions", {})[name]))

    def resolve(self, value):
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                try:
                    return self.attributes[(logical_id, attribute)]
                except KeyError:
                    raise KeyError(f"cannot resolve GetAtt {logical_id}.{attribute}") from None
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_value(m.group(1), extra)), text)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub_value(self, name: str, extra: dict):
        if name in extra:
            return extra[name]
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attributes[(logical_id, attribute)]
        return self.ref(name)
