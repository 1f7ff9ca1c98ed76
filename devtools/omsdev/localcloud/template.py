"""Reads a CloudFormation / SAM template the way CloudFormation and SAM do, for the local cloud.

- `load_yaml` turns the short-form intrinsic tags (!Ref, !GetAtt, !Sub ...) into their long form.
- `Template` gives the parameters (defaults + overrides, validated), the resources, and each
  `AWS::Serverless::Function` with `Globals.Function` merged in as SAM merges it (maps merged,
  lists concatenated global + local, everything else: the function's own value wins).
- `Resolver` evaluates Ref / GetAtt / Sub / Join / Select / Split / If / FindInMap ... against the
  parameters, the pseudo parameters and (through a `resources` lookup) the provisioned stack.

Nothing about resources or wiring is known here that the template does not say.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account; a Stack asks the endpoint for the real one

_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or", "FindInMap",
            "Base64", "GetAZs", "ImportValue", "Cidr", "Length", "ToJsonString",
        )
    },
}


class TemplateError(ValueError):
    """The template cannot be read or resolved; the message names the part at fault."""


class _Loader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if suffix not in _TAGS:
        raise TemplateError(f"unknown intrinsic tag !{suffix} at line {node.start_mark.line + 1}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            logical_id, _, attribute = value.partition(".")
            value = [logical_id, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {_TAGS[suffix]: value}


_Loader.add_multi_constructor("!", _construct_tag)


def load_yaml(text: str) -> dict:
    """Parse template text (YAML or JSON), short-form tags converted to long form."""
    body = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise TemplateError("not a CloudFormation template: no Resources section")
    return body


def is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (
        next(iter(value)) in ("Ref", "Condition") or next(iter(value)).startswith("Fn::")
    )


def sam_merge(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge, lists concatenate (global first), anything else: local wins."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if is_intrinsic(global_value) or is_intrinsic(local_value):
            return copy.deepcopy(local_value)
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = sam_merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    return copy.deepcopy(local_value)


@dataclass(frozen=True)
class FunctionSpec:
    """One `AWS::Serverless::Function` with Globals merged in (values still unresolved)."""

    logical_id: str
    handler: str | None
    code_uri: Path | None
    runtime: str | None
    timeout: int
    memory_size: int
    reserved_concurrency: int | None
    environment: dict
    events: dict
    layers: list
    properties: dict = field(repr=False)

    @property
    def code_dir(self) -> Path | None:
        return self.code_uri

    @property
    def memory(self) -> int:
        return self.memory_size

    @property
    def module(self) -> str:
        return (self.handler or "").rpartition(".")[0]

    @property
    def entry_point(self) -> str:
        return (self.handler or "").rpartition(".")[2]


@dataclass
class Template:
    path: Path
    body: dict
    parameter_overrides: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, parameter_overrides: dict | None = None) -> "Template":
        path = Path(path).resolve()
        try:
            body = load_yaml(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise TemplateError(f"cannot read template {path}: {error}") from error
        template = cls(path, body, dict(parameter_overrides or {}))
        template.parameters()  # validate overrides early
        return template

    @classmethod
    def from_text(cls, text: str, path: str | Path = "template.yaml", parameter_overrides: dict | None = None) -> "Template":
        """A template from text; relative CodeUri values resolve against `path`'s directory."""
        return cls(Path(path).resolve(), load_yaml(text), dict(parameter_overrides or {}))

    @property
    def resources(self) -> dict:
        return self.body["Resources"]

    @property
    def conditions(self) -> dict:
        return self.body.get("Conditions", {})

    @property
    def mappings(self) -> dict:
        return self.body.get("Mappings", {})

    def parameters(self) -> dict[str, Any]:
        """Parameter values: overrides over defaults, validated as CloudFormation validates them."""
        declared = self.body.get("Parameters", {})
        unknown = sorted(set(self.parameter_overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(unknown)}")
        return {name: _parameter_value(name, spec, self.parameter_overrides) for name, spec in declared.items()}

    def resolver(self, stack_name: str = "local", resources: "ResourceLookup | None" = None,
                 region: str = REGION, account_id: str = ACCOUNT_ID) -> "Resolver":
        return Resolver(self, stack_name, resources, region=region, account_id=account_id)

    def is_active(self, logical_id: str) -> bool:
        """False when the resource has a `Condition` that evaluates to false."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.resolver().condition(condition)

    def functions(self) -> list[FunctionSpec]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        return [
            self._function(logical_id, sam_merge(globals_, resource.get("Properties", {})))
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == "AWS::Serverless::Function" and self.is_active(logical_id)
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        for spec in self.functions():
            if spec.logical_id == logical_id:
                return spec
        names = ", ".join(spec.logical_id for spec in self.functions()) or "none"
        raise KeyError(f"no function {logical_id!r} in {self.path.name}; its functions: {names}")

    def _function(self, logical_id: str, props: dict) -> FunctionSpec:
        code_uri = props.get("CodeUri")
        return FunctionSpec(
            logical_id=logical_id,
            handler=props.get("Handler"),
            code_uri=(self.path.parent / code_uri).resolve() if isinstance(code_uri, str) else None,
            runtime=props.get("Runtime"),
            timeout=int(props.get("Timeout", 3)),
            memory_size=int(props.get("MemorySize", 128)),
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            environment=props.get("Environment", {}).get("Variables", {}),
            events=props.get("Events", {}),
            layers=props.get("Layers", []),
            properties=props,
        )


def _parameter_value(name: str, spec: dict, overrides: dict) -> Any:
    if name in overrides:
        raw = overrides[name]
    elif "Default" in spec:
        raw = spec["Default"]
    else:
        raise TemplateError(f"template parameter {name} has no Default and no override")
    kind = spec.get("Type", "String")
    if kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
        return raw if isinstance(raw, list) else [item.strip() for item in str(raw).split(",")]
    value = str(raw).lower() if isinstance(raw, bool) else str(raw)
    problems = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"does not match {spec['AllowedPattern']}")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            problems.append("not a number")
        else:
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"above MaxValue {spec['MaxValue']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problems.append(f"longer than MaxLength {spec['MaxLength']}")
    if problems:
        raise TemplateError(f"parameter {name}={value!r}: " + "; ".join(problems))
    return value


class ResourceLookup(Protocol):
    """What a provisioned stack answers: Ref and GetAtt of its resources."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    """Evaluates intrinsic functions; resource Refs/GetAtts go to `resources` (the provisioned stack)."""

    def __init__(self, template: Template, stack_name: str, resources: ResourceLookup | None = None, *,
                 region: str = REGION, account_id: str = ACCOUNT_ID):
        self.template = template
        self.stack_name = stack_name
        self.resources = resources
        self.region, self.account_id = region, account_id
        self.parameters = template.parameters()

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic evaluated; `AWS::NoValue` entries removed (None at top level)."""
        result = self._resolve(value)
        return None if result is NO_VALUE else result

    def condition(self, name: str) -> bool:
        if name not in self.template.conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(self.template.conditions[name]))

    def pseudo(self, name: str) -> Any:
        values = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return values[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            return self.pseudo(name)
        return self._resource("Ref", name, lambda: self.resources.ref(name))

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self._resource(f"GetAtt {logical_id}.{attribute}", logical_id,
                              lambda: self.resources.get_att(logical_id, attribute))

    def _resource(self, what: str, logical_id: str, lookup) -> Any:
        if logical_id not in self.template.resources:
            raise TemplateError(f"{what}: no parameter or resource named {logical_id}")
        if self.resources is None:
            raise TemplateError(f"{what}: resource values need a provisioned stack")
        return lookup()

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value) and not (next(iter(value)) == "Condition" and not isinstance(value["Condition"], str)):
            (name, argument), = value.items()
            return self._intrinsic(name, argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _intrinsic(self, name: str, arg: Any) -> Any:
        if name == "Ref":
            return self.ref(self._resolve(arg))
        if name == "Condition":
            return self.condition(arg)
        handler = getattr(self, "_fn_" + name[4:].lower(), None)
        if handler is None:
            raise TemplateError(f"the local cloud does not support {name}")
        return handler(arg)

    def _fn_getatt(self, arg: Any) -> Any:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(logical_id, self._resolve(attribute))

    def _fn_sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._resolve(arg[1]))

        def value(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                found = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                found = self.get_att(*name.split(".", 1))
            else:
                found = self.ref(name)
            return _to_string(found)

        return re.sub(r"\$\{([^}]+)\}", value, text)

    def _fn_join(self, arg: Any) -> str:
        delimiter, items = arg
        return str(delimiter).join(_to_string(item) for item in self._resolve(items))

    def _fn_select(self, arg: Any) -> Any:
        index, items = self._resolve(arg[0]), self._resolve(arg[1])
        return items[int(index)]

    def _fn_split(self, arg: Any) -> list:
        return _to_string(self._resolve(arg[1])).split(arg[0])

    def _fn_if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self._resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self._resolve(item) for item in arg)
        return _to_string(left) == _to_string(right)

    def _fn_not(self, arg: Any) -> bool:
        return not self._resolve(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self._resolve(item) for item in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self._resolve(item) for item in arg)

    def _fn_findinmap(self, arg: Any) -> Any:
        map_name, top, second = (self._resolve(item) for item in arg[:3])
        try:
            return self.template.mappings[map_name][top][second]
        except KeyError:
            if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return self._resolve(arg[3]["DefaultValue"])
            raise TemplateError(f"Fn::FindInMap: no {map_name}.{top}.{second} in Mappings") from None

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(_to_string(self._resolve(arg)).encode()).decode()

    def _fn_getazs(self, arg: Any) -> list[str]:
        region = self._resolve(arg) or self.region
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_length(self, arg: Any) -> int:
        return len(self._resolve(arg))

    def _fn_tojsonstring(self, arg: Any) -> str:
        return json.dumps(self._resolve(arg), separators=(",", ":"))

    def _fn_importvalue(self, arg: Any) -> Any:
        raise TemplateError(f"Fn::ImportValue {self._resolve(arg)!r}: cross-stack exports are not emulated locally")


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def environment_strings(variables: dict) -> dict[str, str]:
    """Resolved environment variables as Lambda sees them: strings; removed (NoValue/None) ones dropped."""
    return {key: _to_string(value) for key, value in variables.items() if value is not None and value is not NO_VALUE}
