"""Creates the template's stateful resources in an AWS-compatible endpoint (moto server, LocalStack).

Physical names are `{stack}-{LogicalId}` unless the template names the resource itself (S3 buckets
lower-cased into a valid bucket name, FIFO queues and topics end in `.fifo`), so any tool can find a
running stack again from the template alone: `Stack(...).attach()` looks the resources up without
creating anything; `Stack(...).provision()` creates what is missing and reuses what exists.
Resources are created in dependency order (Ref / GetAtt / Sub / DependsOn), so a queue's RedrivePolicy
can name its DLQ's ARN. Functions, layers, IAM and other resources that need no emulated service are
recorded (their Ref / Arn exist for the resolver) but not created; any other type is refused by name.
Cognito user pools, their app clients and groups are recorded with ids derived from the stack name and
logical id (the same in every process); `local_auth` stands in for the pool itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from omsdev.localcloud.template import (
    ACCOUNT_ID,
    REGION,
    Resolver,
    Template,
    TemplateError,
    environment_strings,
)

# Types that need no emulated service: the local cloud runs functions in-process and wires their
# Events itself; IAM, logs and alarms have no local effect (so neither has an alarm topic's e-mail
# subscription: nothing publishes to it locally, and SNS would only send a confirmation mail).
RECORDED_TYPES = {
    "AWS::Serverless::Function": "function",
    "AWS::Serverless::LayerVersion": "layer",
    "AWS::Lambda::LayerVersion": "layer",
    "AWS::Lambda::Permission": "plain",
    "AWS::IAM::Role": "role",
    "AWS::IAM::Policy": "plain",
    "AWS::IAM::ManagedPolicy": "managed_policy",
    "AWS::Logs::LogGroup": "log_group",
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::CloudWatch::Dashboard": "plain",
    "AWS::SNS::Subscription": "plain",
    "AWS::Serverless::Api": "plain",
    "AWS::Serverless::HttpApi": "plain",
    "AWS::Cognito::UserPool": "user_pool",
    "AWS::Cognito::UserPoolClient": "user_pool_client",
    "AWS::Cognito::UserPoolGroup": "user_pool_group",
}
CREATED_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::SecretsManager::Secret",
    "AWS::SSM::Parameter",
)
# Queue properties that are SQS attributes of the same name (values sent as strings).
_QUEUE_ATTRIBUTES = (
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue", "ContentBasedDeduplication",
    "DeduplicationScope", "FifoThroughputLimit", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
_QUEUE_CREATE_ONLY = ("FifoQueue",)
_NAME_PROPERTIES = ("FunctionName", "LayerName", "RoleName", "ManagedPolicyName", "LogGroupName", "AlarmName",
                    "ClientName", "GroupName")


class ProvisionError(RuntimeError):
    """A resource could not be created or found; the message names it."""


@dataclass
class Provisioned:
    """One resource of the stack: its type, what Ref returns and its GetAtt attributes."""

    logical_id: str
    type: str
    ref: Any
    attributes: dict = field(default_factory=dict)
    created: bool = False  # True for resources that live in the endpoint


def physical_name(stack_name: str, logical_id: str, resource_type: str = "") -> str:
    name = f"{stack_name}-{logical_id}"
    if resource_type == "AWS::S3::Bucket":
        return bucket_name(name)
    return name


def bucket_name(name: str) -> str:
    """A valid S3 bucket name from any name: lower case, [a-z0-9.-], 3-63 characters."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip(".-")[:63].strip(".-")
    return cleaned.ljust(3, "0")


def aws_session(endpoint: str, region: str = REGION) -> Callable[[str], Any]:
    """A client factory for the endpoint with dummy credentials (never the developer's real ones)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    # botocore >= 1.44.4 with moto 5.2: account-id endpoints break DynamoDB Streams calls.
    config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard", "max_attempts": 3},
                    max_pool_connections=32)
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def client(service: str):
        with lock:
            if service not in clients:
                clients[service] = session.client(service, endpoint_url=endpoint, config=config)
            return clients[service]

    return client


def _references(value: Any) -> set[str]:
    """Logical ids a property value refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


class Stack:
    """The template's resources in one endpoint: names, ARNs, URLs, and a resolver that knows them."""

    def __init__(self, template: Template, stack_name: str, endpoint: str, *, region: str = REGION):
        self.template, self.stack_name, self.endpoint, self.region = template, stack_name, endpoint, region
        if "SecretsPrefix" in template.body.get("Parameters", {}):
            # Each local stack's secrets under its own name unless told otherwise: moto servers started
            # in one process share their backends, and with one fixed prefix (`oms`) a stack would read
            # the shops and APIs another stack registered.
            template.parameter_overrides.setdefault("SecretsPrefix", stack_name)
        self.client = aws_session(endpoint, region)
        self.resources: dict[str, Provisioned] = {}
        self._account_id: str | None = None

    # -- lookups -----------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        """The endpoint's account (moto 123456789012, LocalStack 000000000000)."""
        if self._account_id is None:
            try:
                self._account_id = self.client("sts").get_caller_identity()["Account"]
            except Exception:  # noqa: BLE001 - an endpoint without STS: moto's default account
                self._account_id = ACCOUNT_ID
        return self._account_id

    @property
    def resolver(self) -> Resolver:
        return Resolver(self.template, self.stack_name, self, region=self.region, account_id=self.account_id)

    def ref(self, logical_id: str) -> Any:
        return self._get(logical_id).ref

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self._get(logical_id)
        if attribute not in resource.attributes:
            known = ", ".join(sorted(resource.attributes)) or "none"
            raise TemplateError(f"GetAtt {logical_id}.{attribute}: {resource.type} offers {known} here")
        return resource.attributes[attribute]

    def stream_arn(self, table_logical_id: str) -> str:
        resource = self._get(table_logical_id)
        if "StreamArn" not in resource.attributes:
            raise TemplateError(f"{table_logical_id} has no StreamSpecification, so no stream")
        return resource.attributes["StreamArn"]

    def logical_id_for_arn(self, arn: str) -> str | None:
        for logical_id, resource in self.resources.items():
            if arn in (resource.attributes.get("Arn"), resource.attributes.get("StreamArn"), resource.ref):
                return logical_id
        return None

    def function_name(self, function_logical_id: str) -> str:
        return self.ref(function_logical_id)

    def function_environment(self, function_logical_id: str, extra: dict | None = None) -> dict[str, str]:
        """The function's environment variables, every value resolved, `extra` applied on top."""
        spec = self.template.function(function_logical_id)
        environment = environment_strings(self.resolver.resolve(spec.environment) or {})
        environment.update({key: str(value) for key, value in (extra or {}).items()})
        return environment

    def _get(self, logical_id: str) -> Provisioned:
        if logical_id not in self.resources:
            if logical_id in self.template.resources:
                raise TemplateError(f"{logical_id} is not provisioned (its Condition is false?)")
            raise TemplateError(f"no resource {logical_id} in the template")
        return self.resources[logical_id]

    # -- provisioning ------------------------------------------------------------------------
    def provision(self) -> "Stack":
        """Create what is missing, reuse what exists (idempotent)."""
        return self._walk(create=True)

    def attach(self) -> "Stack":
        """Find an already provisioned stack's resources without creating anything."""
        return self._walk(create=False)

    def _walk(self, create: bool) -> "Stack":
        unknown = sorted({
            f"{resource.get('Type')} ({logical_id})"
            for logical_id, resource in self.template.resources.items()
            if resource.get("Type") not in RECORDED_TYPES and resource.get("Type") not in CREATED_TYPES
        })
        if unknown:
            raise ProvisionError("the local cloud cannot emulate resource type(s): " + ", ".join(unknown))
        for logical_id in self.creation_order():
            resource = self.template.resources[logical_id]
            kind = resource["Type"]
            if kind in RECORDED_TYPES:
                # Only their names matter here; the rest (policies, events) is resolved where it is used.
                raw = resource.get("Properties", {})
                names = {key: self.resolver.resolve(raw[key]) for key in _NAME_PROPERTIES if key in raw}
                self.resources[logical_id] = self._record(logical_id, kind, names)
            else:
                props = self.resolver.resolve(resource.get("Properties", {})) or {}
                creator = getattr(self, "_" + kind.split("::")[1].lower())
                try:
                    self.resources[logical_id] = creator(logical_id, props, create)
                except ClientError as error:
                    raise ProvisionError(f"{logical_id} ({kind}): {error}") from error
        return self

    def creation_order(self) -> list[str]:
        """Active resources, each after the resources it refers to."""
        resources = self.template.resources
        ordered: list[str] = []

        def visit(logical_id: str, path: tuple[str, ...]) -> None:
            if logical_id in ordered or logical_id not in resources or not self.template.is_active(logical_id):
                return
            if logical_id in path:
                raise ProvisionError("circular reference: " + " -> ".join(path + (logical_id,)))
            resource = resources[logical_id]
            depends_on = resource.get("DependsOn", [])
            dependencies = _references(resource.get("Properties", {})) | set(
                [depends_on] if isinstance(depends_on, str) else depends_on
            )
            for dependency in sorted(dependencies):
                visit(dependency, path + (logical_id,))
            ordered.append(logical_id)

        for logical_id in resources:
            visit(logical_id, ())
        return ordered

    def _missing(self, logical_id: str, kind: str, name: str) -> ProvisionError:
        return ProvisionError(
            f"{logical_id} ({kind} {name}) does not exist at {self.endpoint}: is the local cloud running "
            f"with stack name {self.stack_name!r}? (`oms local up --stack-name {self.stack_name}`)"
        )

    def _arn(self, service: str, resource: str, region: str | None = None) -> str:
        return f"arn:aws:{service}:{self.region if region is None else region}:{self.account_id}:{resource}"

    def _record(self, logical_id: str, kind: str, props: dict) -> Provisioned:
        style = RECORDED_TYPES[kind]
        name = physical_name(self.stack_name, logical_id)
        if style == "function":
            name = props.get("FunctionName", name)
            return Provisioned(logical_id, kind, name, {"Arn": self._arn("lambda", f"function:{name}")})
        if style == "layer":
            name = props.get("LayerName", name)
            return Provisioned(logical_id, kind, self._arn("lambda", f"layer:{name}:1"))
        if style == "role":
            name = props.get("RoleName", name)
            return Provisioned(logical_id, kind, name, {"Arn": self._arn("iam", f"role/{name}", ""), "RoleId": name})
        if style == "managed_policy":
            return Provisioned(logical_id, kind, self._arn("iam", f"policy/{props.get('ManagedPolicyName', name)}", ""))
        if style == "log_group":
            name = props.get("LogGroupName", name)
            return Provisioned(logical_id, kind, name, {"Arn": self._arn("logs", f"log-group:{name}:*")})
        if style == "alarm":
            name = props.get("AlarmName", name)
            return Provisioned(logical_id, kind, name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})
        if style == "user_pool":  # ids shaped like Cognito's: us-east-1_aD06NQmjO, a 26-character client id
            pool_id = f"{self.region}_{_stable_id(name, 9, string.ascii_letters + string.digits)}"
            provider = f"cognito-idp.{self.region}.amazonaws.com/{pool_id}"
            return Provisioned(logical_id, kind, pool_id, {
                "Arn": self._arn("cognito-idp", f"userpool/{pool_id}"), "ProviderName": provider,
                "ProviderURL": f"https://{provider}", "UserPoolId": pool_id})
        if style == "user_pool_client":
            client_id = _stable_id(name, 26, string.ascii_lowercase + string.digits)
            return Provisioned(logical_id, kind, client_id,
                               {"ClientId": client_id, "Name": props.get("ClientName", name)})
        if style == "user_pool_group":
            return Provisioned(logical_id, kind, props.get("GroupName", name))
        return Provisioned(logical_id, kind, name)

    # -- one method per created type (named after the service) -------------------------------
    def _dynamodb(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        dynamodb = self.client("dynamodb")
        name = props.get("TableName") or physical_name(self.stack_name, logical_id)
        try:
            table = dynamodb.describe_table(TableName=name)["Table"]
        except dynamodb.exceptions.ResourceNotFoundException:
            if not create:
                raise self._missing(logical_id, "table", name) from None
            dynamodb.create_table(**_table_request(name, props))
            table = self._wait_for_table(name)
        if create:
            self._time_to_live(name, props.get("TimeToLiveSpecification"))
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Provisioned(logical_id, "AWS::DynamoDB::Table", name, attributes, created=True)

    def _wait_for_table(self, name: str) -> dict:
        dynamodb = self.client("dynamodb")
        deadline = time.monotonic() + 60
        while True:
            table = dynamodb.describe_table(TableName=name)["Table"]
            if table.get("TableStatus") == "ACTIVE" or time.monotonic() > deadline:
                return table
            time.sleep(0.2)

    def _time_to_live(self, name: str, ttl: dict | None) -> None:
        if not ttl or not ttl.get("Enabled"):
            return
        dynamodb = self.client("dynamodb")
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and current.get("AttributeName") == ttl["AttributeName"]:
            return
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})

    def _sqs(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        sqs = self.client("sqs")
        attributes = {key: _attribute_string(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        fifo = attributes.get("FifoQueue") == "true"
        name = props.get("QueueName") or physical_name(self.stack_name, logical_id) + (".fifo" if fifo else "")
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            if create and attributes:
                mutable = {key: value for key, value in attributes.items() if key not in _QUEUE_CREATE_ONLY}
                if mutable:
                    sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
        except sqs.exceptions.QueueDoesNotExist:
            if not create:
                raise self._missing(logical_id, "queue", name) from None
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Provisioned(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url},
                           created=True)

    def _s3(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        s3 = self.client("s3")
        name = props.get("BucketName") or physical_name(self.stack_name, logical_id, "AWS::S3::Bucket")
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            if not create:
                raise self._missing(logical_id, "bucket", name) from None
            request = {"Bucket": name}
            if self.region != "us-east-1":
                request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**request)
        versioning = props.get("VersioningConfiguration", {}).get("Status")
        if create and versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        return Provisioned(logical_id, "AWS::S3::Bucket", name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{self.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{self.region}.amazonaws.com",
        }, created=True)

    def _sns(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        sns = self.client("sns")
        fifo = bool(props.get("FifoTopic"))
        name = props.get("TopicName") or physical_name(self.stack_name, logical_id) + (".fifo" if fifo else "")
        if create:
            attributes = {"FifoTopic": "true"} if fifo else {}
            if props.get("ContentBasedDeduplication"):
                attributes["ContentBasedDeduplication"] = "true"
            arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
            self._subscriptions(arn, props.get("Subscription", []))
        else:
            arn = self._arn("sns", name)
            try:
                sns.get_topic_attributes(TopicArn=arn)
            except ClientError:
                raise self._missing(logical_id, "topic", name) from None
        return Provisioned(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name}, created=True)

    def _subscriptions(self, topic_arn: str, subscriptions: list[dict]) -> None:
        sns = self.client("sns")
        existing = {(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]}
        for subscription in subscriptions:
            if (subscription["Protocol"], subscription["Endpoint"]) not in existing:
                sns.subscribe(TopicArn=topic_arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])

    def _secretsmanager(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        client = self.client("secretsmanager")
        name = props.get("Name") or physical_name(self.stack_name, logical_id)
        try:
            arn = client.describe_secret(SecretId=name)["ARN"]
        except client.exceptions.ResourceNotFoundException:
            if not create:
                raise self._missing(logical_id, "secret", name) from None
            request = {"Name": name, "SecretString": props.get("SecretString") or _generated_secret(props.get("GenerateSecretString", {}))}
            if props.get("Description"):
                request["Description"] = props["Description"]
            arn = client.create_secret(**request)["ARN"]
        return Provisioned(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn}, created=True)

    def _ssm(self, logical_id: str, props: dict, create: bool) -> Provisioned:
        """A String parameter (SSM): `!Ref` gives its name, as in CloudFormation. An existing value is
        kept, so a value changed at run time (rules without a deploy) survives `oms local up` again."""
        client = self.client("ssm")
        name = props.get("Name") or physical_name(self.stack_name, logical_id)  # like CloudFormation: no leading /
        try:
            client.get_parameter(Name=name)
        except client.exceptions.ParameterNotFound:
            if not create:
                raise self._missing(logical_id, "parameter", name) from None
            client.put_parameter(Name=name, Value=props["Value"], Type=props.get("Type", "String"),
                                 Description=props.get("Description", ""))
        return Provisioned(logical_id, "AWS::SSM::Parameter", name,
                           {"Type": props.get("Type", "String"), "Value": props["Value"]}, created=True)


def _table_request(name: str, props: dict) -> dict:
    billing = props.get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    indexes = []
    for index in props.get("GlobalSecondaryIndexes", []):
        index = dict(index)
        if billing == "PROVISIONED":
            index.setdefault("ProvisionedThroughput", request["ProvisionedThroughput"])
        else:
            index.pop("ProvisionedThroughput", None)
        indexes.append(index)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if props.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse and sse.get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True, **({"SSEType": sse["SSEType"]} if sse.get("SSEType") else {})}
    if props.get("TableClass"):
        request["TableClass"] = props["TableClass"]
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    return request


def _stable_id(seed: str, length: int, alphabet: str) -> str:
    """`length` characters of `alphabet`, the same for the same seed in every process."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    characters = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        characters.append(alphabet[index])
    return "".join(characters)


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _generated_secret(spec: dict) -> str:
    alphabet = string.ascii_letters + string.digits + ("" if spec.get("ExcludePunctuation") else "!#$%&()*+,-.:;<=>?@[]^_{|}~")
    alphabet = "".join(c for c in alphabet if c not in spec.get("ExcludeCharacters", ""))
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


def provision(template: Template, stack_name: str, endpoint: str) -> Stack:
    return Stack(template, stack_name, endpoint).provision()
