"""The code reads its configuration only through oms.settings, and the template declares all of it."""

import re
from pathlib import Path

import yaml

from oms.settings import environment_names

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CODE = [ROOT / "layers" / "shared" / "oms", ROOT / "functions"]


class _TolerantLoader(yaml.SafeLoader):
    """Reads a CloudFormation template without resolving its short-form tags."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template() -> dict:
    return yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=_TolerantLoader)


def test_every_variable_the_settings_read_is_declared_for_every_function():
    # GIVEN the variables oms.settings reads
    needed = environment_names()
    # WHEN the template's global function environment is read
    declared = set(template()["Globals"]["Function"]["Environment"]["Variables"])
    # THEN each one is declared, so `sam local invoke --env-vars` can override it too
    assert needed <= declared, f"declare in Globals: {sorted(needed - declared)}"


def test_no_production_module_reads_the_environment_outside_settings():
    offenders = []
    pattern = re.compile(r"os\.environ|os\.getenv|getenv\(")
    for folder in PRODUCTION_CODE:
        for path in folder.rglob("*.py"):
            if path.name == "settings.py":
                continue
            if pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_production_code_never_imports_the_developer_tooling():
    offenders = []
    for folder in PRODUCTION_CODE:
        for path in folder.rglob("*.py"):
            if re.search(r"^\s*(from|import)\s+omsdev\b", path.read_text(), flags=re.M):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_only_adapters_import_boto3_or_requests():
    offenders = []
    for path in (ROOT / "layers" / "shared" / "oms").rglob("*.py"):
        relative = path.relative_to(ROOT / "layers" / "shared" / "oms")
        if relative.parts[0] == "adapters":
            continue
        if re.search(r"^\s*(from|import)\s+(boto3|botocore|requests)\b", path.read_text(), flags=re.M):
            offenders.append(str(relative))
    assert offenders == []


def test_the_domain_stays_pure():
    for path in (ROOT / "layers" / "shared" / "oms" / "domain").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(boto3|requests|aws_lambda_powertools|os)\b", text, flags=re.M), path
