"""The local cloud's template loader: short-form tags, SAM Globals merge, parameters, intrinsic resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from omsdev.localcloud.lambda_runtime import FunctionError, LambdaContext, merge_environments
from omsdev.localcloud.template import Template, TemplateError, load_yaml

REPO = Path(__file__).resolve().parents[2]

TAGS = """
Resources:
  Thing:
    Type: Custom::Thing
    Properties:
      A: !Ref Param
      B: !GetAtt Queue.Arn
      C: !GetAtt [Queue, QueueName]
      D: !Sub "${AWS::Region}-${Param}"
      E: !Sub ["${X}-y", {X: !Ref Param}]
      F: !Join [",", [a, !Ref Param]]
      G: !Select [1, !Split [",", "a,b,c"]]
      H: !If [IsProd, yes-prod, no-prod]
      I: !Equals [!Ref Param, p]
      J: !Not [!Condition IsProd]
      K: !And [!Equals [a, a], !Or [!Equals [a, b], !Equals [b, b]]]
      L: !FindInMap [Sizes, !Ref Param, memory]
      M: !Base64 hello
      N: !GetAZs ""
      O: !ImportValue shared-output
"""


class FakeStack:
    """Answers Ref/GetAtt for resources, as a provisioned Stack does."""

    def ref(self, logical_id):
        return f"ref-of-{logical_id}"

    def get_att(self, logical_id, attribute):
        return f"{attribute}-of-{logical_id}"


def test_short_form_tags_become_long_form():
    # GIVEN a template using every short-form intrinsic tag
    # WHEN it is loaded
    props = load_yaml(TAGS)["Resources"]["Thing"]["Properties"]
    # THEN each tag is its long form, GetAtt "A.B" split like the list form
    assert props["A"] == {"Ref": "Param"}
    assert props["B"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert props["C"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert props["D"] == {"Fn::Sub": "${AWS::Region}-${Param}"}
    assert props["E"] == {"Fn::Sub": ["${X}-y", {"X": {"Ref": "Param"}}]}
    assert props["G"] == {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}
    assert props["J"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    assert props["L"] == {"Fn::FindInMap": ["Sizes", {"Ref": "Param"}, "memory"]}
    assert props["N"] == {"Fn::GetAZs": ""}
    assert props["O"] == {"Fn::ImportValue": "shared-output"}


def test_an_unknown_tag_is_a_clear_error():
    # GIVEN a template with a tag CloudFormation does not know
    # WHEN it is loaded THEN the error names the tag
    with pytest.raises(TemplateError, match="!Reff"):
        load_yaml("Resources:\n  X:\n    Type: T\n    Properties:\n      A: !Reff B\n")


def _template(text: str, tmp_path: Path, overrides: dict | None = None) -> Template:
    return Template.from_text(text, tmp_path / "infra" / "template.yaml", overrides)


def test_intrinsics_resolve_against_parameters_pseudo_parameters_conditions_and_the_stack(tmp_path):
    # GIVEN the tag template with a parameter, a condition, a mapping and a queue resource
    text = (
        "Parameters:\n  Param:\n    Type: String\n    Default: p\n"
        "Conditions:\n  IsProd: !Equals [!Ref Param, prod]\n"
        "Mappings:\n  Sizes:\n    p:\n      memory: 256\n"
        + TAGS + "  Queue:\n    Type: AWS::SQS::Queue\n"
    )
    template = _template(text, tmp_path)
    # WHEN the properties are resolved for stack "s1" (ImportValue left out: it is refused below)
    props = dict(template.resources["Thing"]["Properties"])
    imported = props.pop("O")
    resolved = template.resolver("s1", FakeStack()).resolve(props)
    # THEN every intrinsic has its CloudFormation value
    assert resolved == {
        "A": "p", "B": "Arn-of-Queue", "C": "QueueName-of-Queue", "D": "us-east-1-p", "E": "p-y",
        "F": "a,p", "G": "b", "H": "no-prod", "I": True, "J": True, "K": True, "L": 256,
        "M": "aGVsbG8=", "N": ["us-east-1a", "us-east-1b", "us-east-1c"],
    }
    with pytest.raises(TemplateError, match="ImportValue"):
        template.resolver("s1", FakeStack()).resolve(imported)


def test_sub_escapes_novalue_and_unresolvable_refs(tmp_path):
    # GIVEN values using ${!Literal}, AWS::NoValue in a map and a list, and a Ref to nothing
    template = _template("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", tmp_path)
    resolver = template.resolver("stack-x", FakeStack())
    # WHEN they are resolved
    # THEN the escape stays literal, NoValue entries disappear, the pseudo parameters resolve
    assert resolver.resolve({"Fn::Sub": "${!Keep}-${AWS::StackName}-${Q.Arn}"}) == "${Keep}-stack-x-Arn-of-Q"
    assert resolver.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    with pytest.raises(TemplateError, match="Nothing"):
        resolver.resolve({"Ref": "Nothing"})
    # AND a resource Ref without a provisioned stack says so
    with pytest.raises(TemplateError, match="provisioned stack"):
        template.resolver().resolve({"Ref": "Q"})


GLOBALS = """
Parameters:
  Level:
    Type: String
    Default: INFO
    AllowedValues: [DEBUG, INFO]
  Retries:
    Type: Number
    Default: 3
    MinValue: 1
Globals:
  Function:
    Runtime: python3.12
    Timeout: 60
    MemorySize: 512
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        TABLE: !Ref Table
        LEVEL: !Ref Level
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
  Table:
    Type: AWS::DynamoDB::Table
  PollerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../functions/
      Handler: poller.handler.lambda_handler
      Timeout: 30
      ReservedConcurrentExecutions: 1
      Layers: [extra-layer-arn]
      Environment:
        Variables:
          LEVEL: DEBUG
          OWN: yes-own
      Events:
        Tick:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 minute)
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../functions/
      Handler: plain.app.handler
"""


def test_globals_merge_into_each_function_like_sam(tmp_path):
    # GIVEN Globals.Function and two functions, one overriding some of it
    template = _template(GLOBALS, tmp_path)
    # WHEN the functions are read
    poller, plain = template.function("PollerFunction"), template.function("PlainFunction")
    # THEN scalars are overridden, environment maps merged, lists concatenated global first
    assert (poller.timeout, poller.memory_size, poller.reserved_concurrency) == (30, 512, 1)
    assert poller.environment == {"TABLE": {"Ref": "Table"}, "LEVEL": "DEBUG", "OWN": "yes-own"}
    assert poller.layers == [{"Ref": "SharedLayer"}, "extra-layer-arn"]
    assert poller.events["Tick"]["Type"] == "ScheduleV2"
    assert (plain.timeout, plain.environment["LEVEL"], plain.reserved_concurrency) == (60, {"Ref": "Level"}, None)
    # AND the handler splits into module and function, CodeUri resolved against the template's directory
    assert (poller.module, poller.entry_point) == ("poller.handler", "lambda_handler")
    assert poller.code_uri == (tmp_path / "functions").resolve()


def test_parameters_take_overrides_and_are_validated(tmp_path):
    # GIVEN parameters with AllowedValues and MinValue
    # WHEN overridden with valid values THEN the overrides win
    assert _template(GLOBALS, tmp_path, {"Level": "DEBUG"}).parameters() == {"Level": "DEBUG", "Retries": "3"}
    # WHEN overridden with invalid or unknown ones THEN the error names the parameter
    with pytest.raises(TemplateError, match="Level"):
        _template(GLOBALS, tmp_path, {"Level": "LOUD"}).parameters()
    with pytest.raises(TemplateError, match="Retries"):
        _template(GLOBALS, tmp_path, {"Retries": "0"}).parameters()
    with pytest.raises(TemplateError, match="Nope"):
        _template(GLOBALS, tmp_path, {"Nope": "1"}).parameters()


def test_the_project_template_loads_with_every_function_runnable():
    # GIVEN the project's SAM template
    template = Template.load(REPO / "infra" / "template.yaml")
    # WHEN its functions are read
    functions = {spec.logical_id: spec for spec in template.functions()}
    # THEN each has a handler file under its CodeUri and the global environment
    assert functions
    for spec in functions.values():
        assert (spec.code_uri / (spec.module.replace(".", "/") + ".py")).is_file(), spec.logical_id
        assert "ORDERS_TABLE" in spec.environment


def test_each_local_stack_reads_its_secrets_under_its_own_name_unless_a_prefix_is_given():
    from omsdev.localcloud.provision import Stack

    # GIVEN the project template for two local stacks, and a third given its own prefix
    first = Stack(Template.load(REPO / "infra" / "template.yaml"), "stack-a", "http://127.0.0.1:9")
    second = Stack(Template.load(REPO / "infra" / "template.yaml"), "stack-b", "http://127.0.0.1:9")
    given = Stack(Template.load(REPO / "infra" / "template.yaml", {"SecretsPrefix": "shared"}), "stack-c",
                  "http://127.0.0.1:9")
    # WHEN their functions' SECRETS_PREFIX is resolved
    # THEN each stack has its own (one process's moto servers share their secrets), and a given prefix wins
    prefixes = [stack.resolver.resolve({"Ref": "SecretsPrefix"}) for stack in (first, second, given)]
    assert prefixes == ["stack-a", "stack-b", "shared"]
    # AND every secret the functions may read is granted under that prefix, none under a fixed name
    text = (REPO / "infra" / "template.yaml").read_text()
    assert ":secret:oms/" not in text and text.count(":secret:${SecretsPrefix}/") >= 16
    assert Template.load(REPO / "infra" / "template.yaml").function("ShopifyPollerFunction") \
        .environment["SECRETS_PREFIX"] == {"Ref": "SecretsPrefix"}


def test_two_functions_giving_one_variable_different_values_is_refused():
    # GIVEN two functions that disagree on LOG_LEVEL, and two that agree
    # WHEN their environments are merged for one process
    # THEN the disagreement is an error naming both, the agreement is fine
    with pytest.raises(FunctionError, match="AFunction.*LOG_LEVEL.*BFunction"):
        merge_environments({"AFunction": {"LOG_LEVEL": "INFO"}, "BFunction": {"LOG_LEVEL": "DEBUG"}})
    assert merge_environments({"A": {"X": "1"}, "B": {"X": "1", "Y": "2"}}) == {"X": "1", "Y": "2"}


def test_the_context_counts_down_from_the_timeout():
    # GIVEN a context for a 60 s function
    context = LambdaContext(function_name="s-F", invoked_function_arn="arn:aws:lambda:us-east-1:1:function:s-F",
                            memory_limit_in_mb=512, timeout_seconds=60)
    # THEN it has Lambda's attributes and less than 60 s left
    assert 59_000 < context.get_remaining_time_in_millis() <= 60_000
    assert context.function_version == "$LATEST" and context.log_group_name == "/aws/lambda/s-F"
    assert context.aws_request_id and context.log_stream_name
