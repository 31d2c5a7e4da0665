"""Deploy the built template into the emulator through its CloudFormation API, as `sam deploy`
would: package the built code into S3, translate, create the stack, read back what was deployed.

moto's CloudFormation leaves some of the template out. What the local system needs is completed
through the service APIs from the same translated template (never from a second copy of the
configuration); everything else left out is reported, so that nobody mistakes it for deployed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from local.aws.emulator import ACCOUNT_ID, Emulator
from local.aws.intrinsics import Resolver, pseudo_parameters
from local.aws.queue_replacement import queue_replacement, refusal
from local.aws.template import (
    code_locations,
    decide_conditions,
    load_template,
    resolved_parameters,
    translate,
    with_code_uris,
)

ARTIFACT_BUCKET = "local-deployment-artifacts"
# Function properties moto's CloudFormation ignores; the local system does not depend on them
# (the execution environments run on this machine, untraced, with their logs in files).
_NOT_REPRESENTED = ("Architectures", "TracingConfig", "LoggingConfig", "RecursiveLoop")


class DeployError(RuntimeError):
    """The stack could not be deployed into the emulator."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


@dataclass(frozen=True)
class DeployedFunction:
    """One of the stack's functions, as the emulator holds it."""

    logical_id: str
    # GetFunctionConfiguration, as the emulator holds it.
    configuration: dict[str, Any]
    code: S3Location
    # (layer version ARN, its content) in the function's order.
    layers: list[tuple[str, S3Location]]
    # ReservedConcurrentExecutions from the template, or None.
    reserved_concurrency: int | None = None
    # GetFunctionEventInvokeConfig's answer, or None without one.
    event_invoke_config: dict[str, Any] | None = None

    @property
    def arn(self) -> str:
        return str(self.configuration["FunctionArn"])


@dataclass(frozen=True)
class DeployedStack:
    stack_name: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    # GetFunctionConfiguration of the function, as the emulator holds it.
    function: dict[str, Any]
    function_code: S3Location
    # (layer version ARN, its content) in the function's order.
    layers: list[tuple[str, S3Location]]
    # The function's SQS event source mappings, as ListEventSourceMappings returns them.
    event_source_mappings: list[dict[str, Any]]
    # What the emulator left out and how each gap was handled.
    gaps: list[str] = field(default_factory=list)
    # Every function of the stack by logical id, the one above (the consumer) included.
    functions: dict[str, DeployedFunction] = field(default_factory=dict)
    stack_id: str = ""
    # The template as deployed (translated, conditions decided): an update compares with it.
    template: dict[str, Any] = field(default_factory=dict)


class UpdateRefused(DeployError):
    """The update would strand messages; refused before the emulator was asked."""


def deploy(
    emulator: Emulator,
    build_dir: Path,
    stack_name: str,
    parameter_overrides: Mapping[str, Any],
) -> DeployedStack:
    parameters, translated = _prepared(emulator, build_dir, parameter_overrides)
    cloudformation = emulator.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(_for_moto(translated)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    return _read_back(emulator, stack_name, translated, parameters, complete="CREATE_COMPLETE")


def update(
    emulator: Emulator,
    build_dir: Path,
    deployed: DeployedStack,
    parameter_overrides: Mapping[str, Any],
    *,
    allow_queue_replacement: bool = False,
) -> DeployedStack:
    """UpdateStack with `parameter_overrides` over the stack's current values (the SAM CLI's
    UsePreviousValue), as `make deploy` updates a stack in AWS; the completion of what moto's
    CloudFormation skips follows the update (schedules created, changed or deleted, the
    EventInvokeConfig put again). An update that would replace the source queue is refused
    first (UpdateRefused), unless allowed."""
    values = {**deployed.parameters, **{k: str(v) for k, v in parameter_overrides.items()}}
    reason = queue_replacement(
        deployed.stack_id,
        deployed.parameters,
        deployed.outputs["SourceQueueUrl"].rstrip("/").rsplit("/", 1)[-1],
        values,
    )
    if reason is not None and not allow_queue_replacement:
        raise UpdateRefused(refusal(reason, "the replacement allowed"))
    parameters, translated = _prepared(emulator, build_dir, values)
    if parameters == deployed.parameters:
        return deployed
    cloudformation = emulator.client("cloudformation")
    cloudformation.update_stack(
        StackName=deployed.stack_name,
        TemplateBody=json.dumps(_for_moto(translated)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    return _read_back(
        emulator,
        deployed.stack_name,
        translated,
        parameters,
        complete="UPDATE_COMPLETE",
        previous=deployed.template,
    )


def _for_moto(translated: Mapping[str, Any]) -> dict[str, Any]:
    """The template as moto's CloudFormation is given it: without the function's Layers, which
    it ignores on create and fails on when an update changes the function (it hands the layer
    resource itself to the function as an ARN). The completion applies them instead."""
    given: dict[str, Any] = json.loads(json.dumps(translated))
    for resource in given["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"].pop("Layers", None)
    return given


def _prepared(
    emulator: Emulator, build_dir: Path, parameter_overrides: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The parameters, checked, and the template CloudFormation is given, its code packaged."""
    built_template_path = build_dir / "template.yaml"
    if not built_template_path.is_file():
        raise DeployError(f"{built_template_path} not found: run `sam build` (make build) first")
    template = load_template(built_template_path)
    parameters = resolved_parameters(template, parameter_overrides)
    code = _package(emulator, build_dir, template)
    translated = translate(
        with_code_uris(
            template, {lid: f"s3://{loc.bucket}/{loc.key}" for lid, loc in code.items()}
        ),
        parameters,
        emulator.region,
    )
    # moto keeps an AWS::NoValue inside a list as null (a role's Policies then fail to create), so
    # the conditions are decided here, as CloudFormation decides them.
    return parameters, with_typed_mapping_numbers(
        decide_conditions(translated, parameters), parameters
    )


def _read_back(
    emulator: Emulator,
    stack_name: str,
    translated: dict[str, Any],
    parameters: dict[str, str],
    *,
    complete: str,
    previous: Mapping[str, Any] | None = None,
) -> DeployedStack:
    cloudformation = emulator.client("cloudformation")
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if stack["StackStatus"] != complete:
        raise DeployError(f"stack {stack_name} ended in {stack['StackStatus']}")
    physical_ids = {
        summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
        for summary in cloudformation.list_stack_resources(StackName=stack_name)[
            "StackResourceSummaries"
        ]
    }
    completion = _Completion(
        emulator, stack_name, translated, parameters, physical_ids, stack_id=stack["StackId"]
    )
    deployed = completion.deployed(
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        previous=previous,
    )
    return replace(deployed, stack_id=stack["StackId"], template=translated)


# The mapping's integer properties that the template gives from String parameters.
_MAPPING_INTEGERS = (
    ("BatchSize",),
    ("MaximumBatchingWindowInSeconds",),
    ("ScalingConfig", "MaximumConcurrency"),
)


def with_typed_mapping_numbers(
    translated: Mapping[str, Any], parameters: Mapping[str, str]
) -> dict[str, Any]:
    """The template with the event source mapping's integer properties given as numbers.

    CloudFormation converts a string to the integer the resource's schema asks for; moto hands
    the property to its mapping as it is, which then compares the string with numbers."""
    typed: dict[str, Any] = json.loads(json.dumps(translated))
    for resource in typed["Resources"].values():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        for *path, name in _MAPPING_INTEGERS:
            holder = resource["Properties"]
            for key in path:
                holder = holder.get(key, {})
            value = holder.get(name)
            if isinstance(value, dict) and value.get("Ref") in parameters:
                holder[name] = int(parameters[value["Ref"]])
    return typed


def _package(
    emulator: Emulator, build_dir: Path, template: Mapping[str, Any]
) -> dict[str, S3Location]:
    """Zip each built code folder and upload it, as `sam package` does."""
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    locations: dict[str, S3Location] = {}
    for logical_id, (_, folder) in code_locations(template).items():
        archive = _zip_folder(build_dir / folder)
        key = f"{logical_id}-{hashlib.sha256(archive).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=archive)
        locations[logical_id] = S3Location(ARTIFACT_BUCKET, key)
    return locations


def _zip_folder(folder: Path) -> bytes:
    """The folder as a zip, made once per content: the layer is some 50 MB in 3,500 files, and
    zipping it again at every make run and make invoke cost seconds. The cache (beside the build
    folder, in local-cache/) is keyed by every file's path, size and modification time."""
    if not folder.is_dir():
        raise DeployError(f"built code folder {folder} is missing: run `sam build` again")
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    fingerprint = hashlib.sha256()
    for path in files:
        stat = path.stat()
        fingerprint.update(
            f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    cache = (
        folder.parent.parent / "local-cache" / f"{folder.name}-{fingerprint.hexdigest()[:24]}.zip"
    )
    if cache.is_file():
        return cache.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder).as_posix())
    archive_bytes = buffer.getvalue()
    cache.parent.mkdir(parents=True, exist_ok=True)
    for stale in cache.parent.glob(f"{folder.name}-*.zip"):
        stale.unlink(missing_ok=True)
    # Written aside, then renamed: a concurrent run reads a whole zip or none.
    partial = cache.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(archive_bytes)
    partial.replace(cache)
    return archive_bytes


class _Completion:
    """Reads back the deployed stack and fills in what moto's CloudFormation left out."""

    def __init__(
        self,
        emulator: Emulator,
        stack_name: str,
        translated: Mapping[str, Any],
        parameters: Mapping[str, str],
        physical_ids: Mapping[str, str],
        *,
        stack_id: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.stack_name = stack_name
        self.resources: Mapping[str, Any] = translated["Resources"]
        self.parameters = parameters
        self.physical_ids = physical_ids
        # The deploy's reads are CloudFormation's and the local system's, not the account's
        # callers': they spend none of the control-plane budget (local.aws.control_plane).
        self.lambda_client = emulator.own_client("lambda")
        self.gaps: list[str] = []
        self._resolve = Resolver(
            pseudo_parameters(stack_name, emulator.region, ACCOUNT_ID, stack_id_value=stack_id),
            parameters,
            ref=physical_ids.__getitem__,
            get_att=self._arn,
        )

    def deployed(
        self, outputs: dict[str, str], previous: Mapping[str, Any] | None = None
    ) -> DeployedStack:
        """The stack read back, completed; `previous` is the template of the stack before an
        update: its skipped resources are changed or deleted instead of created."""
        function_resources = dict(self._of_type("AWS::Lambda::Function"))
        if not function_resources:
            raise DeployError("the template has no function")
        layers_of = {
            logical_id: [self._layer(r) for r in resource["Properties"].get("Layers", [])]
            for logical_id, resource in function_resources.items()
        }
        for logical_id, layers in layers_of.items():
            self._apply_layers(logical_id, [arn for arn, _ in layers])
        before: Mapping[str, Any] = (previous or {}).get("Resources", {})
        for logical_id, resource in self.resources.items():
            if logical_id not in self.physical_ids:
                self._create_skipped(logical_id, resource, existed=logical_id in before)
        for logical_id, resource in before.items():
            if logical_id not in self.resources and logical_id not in self.physical_ids:
                self._delete_skipped(logical_id, resource)
        detached = self.emulator.detach_builtin_sqs_pollers()
        if detached:
            self.gaps.append(
                "moto's own SQS-to-Lambda delivery (Docker) detached from the source queue: "
                "the local event source mapping polls it instead"
            )
        functions = {
            logical_id: self._function(logical_id, resource, layers_of[logical_id])
            for logical_id, resource in function_resources.items()
        }
        all_mappings = self.lambda_client.list_event_source_mappings()["EventSourceMappings"]
        for mapping in all_mappings:
            _check_batching(mapping)
        # The consumer: the function an SQS mapping invokes (else the only one). Filtered here:
        # moto's FunctionName filter compares against the name as the template spelled it,
        # which need not be the form given.
        sqs_mappings = [m for m in all_mappings if ":sqs:" in m["EventSourceArn"]]
        mapped = {m["FunctionArn"] for m in sqs_mappings}
        consumer = next(
            (f for f in functions.values() if f.arn in mapped), next(iter(functions.values()))
        )
        return DeployedStack(
            stack_name=self.stack_name,
            parameters=dict(self.parameters),
            outputs=outputs,
            function=consumer.configuration,
            function_code=consumer.code,
            layers=consumer.layers,
            event_source_mappings=[m for m in sqs_mappings if m["FunctionArn"] == consumer.arn],
            gaps=self.gaps,
            functions=functions,
        )

    def _function(
        self, logical_id: str, resource: Mapping[str, Any], layers: list[tuple[str, S3Location]]
    ) -> DeployedFunction:
        properties = resource["Properties"]
        name = self.physical_ids[logical_id]
        configuration = self.lambda_client.get_function_configuration(FunctionName=name)
        self._report_not_represented(properties, configuration)
        configuration.pop("ResponseMetadata", None)
        reserved = self._resolve(properties.get("ReservedConcurrentExecutions"))
        try:
            invoke_config: dict[str, Any] | None = (
                self.lambda_client.get_function_event_invoke_config(FunctionName=name)
            )
        except self.lambda_client.exceptions.ResourceNotFoundException:
            invoke_config = None
        if invoke_config is not None:
            invoke_config.pop("ResponseMetadata", None)
        code_uri = properties["Code"]
        return DeployedFunction(
            logical_id=logical_id,
            configuration=configuration,
            code=S3Location(code_uri["S3Bucket"], code_uri["S3Key"]),
            layers=layers,
            reserved_concurrency=int(reserved) if reserved is not None else None,
            event_invoke_config=invoke_config,
        )

    def _of_type(self, resource_type: str) -> Iterator[tuple[str, Any]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == resource_type:
                yield logical_id, resource

    def _layer(self, reference: Any) -> tuple[str, S3Location]:
        logical_id = reference.get("Ref") if isinstance(reference, dict) else None
        resource = self.resources.get(str(logical_id), {})
        if resource.get("Type") != "AWS::Lambda::LayerVersion":
            raise DeployError(f"layer {reference!r} is not one of the template's layers")
        content = S3Location(
            resource["Properties"]["Content"]["S3Bucket"],
            resource["Properties"]["Content"]["S3Key"],
        )
        # moto gives a LayerVersion no physical id; its generated name starts as CloudFormation
        # names resources without a name property: <stack>-<logical id>-<suffix>.
        prefix = f"{self.stack_name}-{logical_id}-"
        for layer in self.lambda_client.list_layers()["Layers"]:
            if layer["LayerName"].startswith(prefix):
                return layer["LatestMatchingVersion"]["LayerVersionArn"], content
        raise DeployError(f"layer {logical_id} was not created by the emulator")

    def _apply_layers(self, function_id: str, layer_arns: list[str]) -> None:
        if not layer_arns:
            return
        self.lambda_client.update_function_configuration(
            FunctionName=self.physical_ids[function_id], Layers=layer_arns
        )
        self.gaps.append(
            "function Layers: ignored by moto's CloudFormation; set through "
            "UpdateFunctionConfiguration from the template's Layers"
        )

    def _create_skipped(
        self, logical_id: str, resource: Mapping[str, Any], *, existed: bool = False
    ) -> None:
        resource_type = resource["Type"]
        if resource_type == "AWS::Scheduler::Schedule":
            self._create_schedule(logical_id, resource, existed=existed)
            return
        if resource_type != "AWS::Lambda::EventInvokeConfig":
            self.gaps.append(f"{logical_id} ({resource_type}): not supported by moto; not deployed")
            return
        properties = self._resolve(resource["Properties"])
        self.lambda_client.put_function_event_invoke_config(
            **_typed_for(self.lambda_client, "PutFunctionEventInvokeConfig", properties)
        )
        self.gaps.append(
            f"{logical_id} (AWS::Lambda::EventInvokeConfig): not supported by moto's "
            "CloudFormation; created through PutFunctionEventInvokeConfig from the template"
        )

    def _create_schedule(
        self, logical_id: str, resource: Mapping[str, Any], *, existed: bool = False
    ) -> None:
        """Through CreateSchedule (UpdateSchedule when an update keeps it), from the template's
        properties: local.lambda_service.scheduler reads it back and invokes its target."""
        properties = dict(self._resolve(resource["Properties"]))
        properties.setdefault("Name", self._schedule_name(logical_id))
        scheduler = self.emulator.client("scheduler")
        if existed:
            scheduler.update_schedule(**properties)
        else:
            scheduler.create_schedule(**properties)
        self.gaps.append(
            f"{logical_id} (AWS::Scheduler::Schedule): not supported by moto's CloudFormation; "
            "created through CreateSchedule from the template and invoked by the local scheduler"
        )

    def _schedule_name(self, logical_id: str) -> str:
        # CloudFormation names a schedule without a Name <stack>-<logical id>-<suffix>; a
        # schedule's name has at most 64 characters (EventBridge Scheduler API, CreateSchedule).
        return f"{self.stack_name}-{logical_id}"[:64]

    def _delete_skipped(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        """A resource moto skipped that the update removed (its Condition now false)."""
        resource_type = resource["Type"]
        if resource_type == "AWS::Scheduler::Schedule":
            name = resource.get("Properties", {}).get("Name") or self._schedule_name(logical_id)
            self.emulator.client("scheduler").delete_schedule(Name=name)
            self.gaps.append(f"{logical_id} ({resource_type}): deleted through DeleteSchedule")
        elif resource_type == "AWS::Lambda::EventInvokeConfig":
            function_name = self._resolve(resource["Properties"])["FunctionName"]
            self.lambda_client.delete_function_event_invoke_config(FunctionName=function_name)

    def _report_not_represented(
        self, properties: Mapping[str, Any], configuration: Mapping[str, Any]
    ) -> None:
        for name in _NOT_REPRESENTED:
            if name not in properties:
                continue
            wanted = self._resolve(properties[name])
            if configuration.get(name) != wanted:
                self.gaps.append(
                    f"function {name}={json.dumps(wanted)}: ignored by moto's CloudFormation "
                    f"(emulator shows {json.dumps(configuration.get(name))}); not needed locally"
                )

    def _arn(self, logical_id: str, attribute: str) -> str:
        resource_type = self.resources[logical_id]["Type"]
        physical_id = self.physical_ids[logical_id]
        if attribute == "Arn" and resource_type == "AWS::SQS::Queue":
            attributes = self.emulator.client("sqs").get_queue_attributes(
                QueueUrl=physical_id, AttributeNames=["QueueArn"]
            )["Attributes"]
            return str(attributes["QueueArn"])
        if attribute == "Arn" and resource_type == "AWS::IAM::Role":
            role = self.emulator.client("iam").get_role(RoleName=physical_id)["Role"]
            return str(role["Arn"])
        if attribute == "Arn" and resource_type == "AWS::Lambda::Function":
            configuration = self.lambda_client.get_function_configuration(FunctionName=physical_id)
            return str(configuration["FunctionArn"])
        raise DeployError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute} ({resource_type})")


def _check_batching(mapping: Mapping[str, Any]) -> None:
    """Refuse what Lambda's CreateEventSourceMapping refuses and moto accepts: for SQS, a
    BatchSize above 10 needs a MaximumBatchingWindowInSeconds of at least 1 (AWS Lambda API
    Reference, EventSourceMappingConfiguration: MaximumBatchingWindowInSeconds)."""
    batch_size = int(mapping.get("BatchSize") or 10)
    window = int(mapping.get("MaximumBatchingWindowInSeconds") or 0)
    if ":sqs:" in str(mapping.get("EventSourceArn", "")) and batch_size > 10 and window < 1:
        raise DeployError(
            f"the event source mapping has BatchSize {batch_size} without a batching window: "
            "Lambda rejects a BatchSize above 10 unless MaximumBatchingWindowInSeconds is at "
            "least 1"
        )


def _typed_for(client: Any, operation: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level values converted to the operation's integer members, as CloudFormation does
    with Number parameters and numeric strings."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    return {
        key: int(value)
        if key in members and members[key].type_name == "integer" and isinstance(value, str)
        else value
        for key, value in properties.items()
    }
