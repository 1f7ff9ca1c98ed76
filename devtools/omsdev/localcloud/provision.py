"""Creates the template's stateful resources in an AWS-compatible endpoint (moto server, LocalStack).

Physical names are `{stack}-{LogicalId}` (buckets lower-cased), so any tool can find them again
without state. Provisioning is idempotent. Functions, layers and IAM are not emulated resources:
the local cloud runs the handlers in-process and the template's event wiring in threads.
"""

from __future__ import annotations

import json

import boto3

from omsdev.localcloud.template import ACCOUNT_ID, REGION, Resolver, Template

NOT_PROVISIONED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
}
_CREATORS = {
    "AWS::DynamoDB::Table": "_table",
    "AWS::SQS::Queue": "_queue",
    "AWS::S3::Bucket": "_bucket",
    "AWS::SNS::Topic": "_topic",
}
PROVISIONED = set(_CREATORS)


def physical_name(stack_name: str, logical_id: str, resource_type: str) -> str:
    name = f"{stack_name}-{logical_id}"
    return name.lower() if resource_type == "AWS::S3::Bucket" else name


def aws_session(endpoint: str):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return lambda service: session.client(service, endpoint_url=endpoint)


def _dependencies(value) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        for item in value.values():
            found |= _dependencies(item)
    elif isinstance(value, list):
        for item in value:
            found |= _dependencies(item)
    return found


class Stack:
    """The provisioned resources: names, ARNs, URLs, and the resolver that knows them."""

    def __init__(self, template: Template, stack_name: str, endpoint: str):
        self.template, self.stack_name, self.endpoint = template, stack_name, endpoint
        self.refs: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.client = aws_session(endpoint)

    @property
    def resolver(self) -> Resolver:
        return Resolver(self.template, self.stack_name, self.refs, self.attributes)

    def ref(self, logical_id: str) -> str:
        return self.refs[logical_id]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        spec = self.template.function(logical_id)
        resolved = self.resolver.resolve(spec.environment)
        return {key: str(value) for key, value in resolved.items() if value is not None}

    def provision(self) -> "Stack":
        resources = self.template.resources
        unknown = {r["Type"] for r in resources.values()} - PROVISIONED - NOT_PROVISIONED
        if unknown:
            raise ValueError(f"the local cloud cannot emulate resource types {sorted(unknown)}")
        for logical_id in self._creation_order():
            resource = resources[logical_id]
            if resource["Type"] in PROVISIONED:
                creator = _CREATORS[resource["Type"]]
                getattr(self, creator)(logical_id, resource.get("Properties", {}))
        return self

    def _creation_order(self) -> list[str]:
        resources = self.template.resources
        ordered: list[str] = []

        def visit(logical_id: str, path: tuple = ()) -> None:
            if logical_id in ordered or logical_id not in resources:
                return
            if logical_id in path:
                raise ValueError(f"circular reference through {logical_id}")
            for dependency in _dependencies(resources[logical_id].get("Properties", {})):
                visit(dependency, path + (logical_id,))
            ordered.append(logical_id)

        for logical_id in resources:
            visit(logical_id)
        return ordered

    def _table(self, logical_id: str, props: dict) -> None:
        props = self.resolver.resolve(props)
        name = physical_name(self.stack_name, logical_id, "AWS::DynamoDB::Table")
        dynamodb = self.client("dynamodb")
        request = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                request[key] = props[key]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        try:
            dynamodb.create_table(**request)
        except dynamodb.exceptions.ResourceInUseException:
            pass
        description = dynamodb.describe_table(TableName=name)["Table"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.refs[logical_id] = name
        self.attributes[(logical_id, "Arn")] = description["TableArn"]
        if description.get("LatestStreamArn"):
            self.attributes[(logical_id, "StreamArn")] = description["LatestStreamArn"]

    def _queue(self, logical_id: str, props: dict) -> None:
        props = self.resolver.resolve(props)
        name = props.get("QueueName") or physical_name(self.stack_name, logical_id, "AWS::SQS::Queue")
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in props.items()
            if key not in ("QueueName", "Tags")
        }
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        if attributes:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.refs[logical_id] = url
        self.attributes.update({(logical_id, "Arn"): arn, (logical_id, "QueueName"): name, (logical_id, "QueueUrl"): url})

    def _bucket(self, logical_id: str, props: dict) -> None:
        name = physical_name(self.stack_name, logical_id, "AWS::S3::Bucket")
        s3 = self.client("s3")
        try:
            s3.create_bucket(Bucket=name)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        self.refs[logical_id] = name
        self.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _topic(self, logical_id: str, props: dict) -> None:
        name = physical_name(self.stack_name, logical_id, "AWS::SNS::Topic")
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        self.refs[logical_id] = arn
        self.attributes[(logical_id, "TopicName")] = name


def provision(template: Template, stack_name: str, endpoint: str) -> Stack:
    return Stack(template, stack_name, endpoint).provision()


__all__ = ["ACCOUNT_ID", "Stack", "provision", "physical_name", "aws_session"]
