"""The CRDs generated from the contract: fresh, structural, and agreeing with the models."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from ragapi import contract as c
from ragoperator import crds

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "crds"
KIND_BY_NAME = {info.kind: info for info in crds.KINDS}


def spec_of(kind: str) -> dict[str, Any]:
    crd = crds.crds()[KIND_BY_NAME[kind].filename]
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def pruned(value: Any) -> Any:
    """A value as the API server keeps it: no nulls, no empty lists or objects."""
    if isinstance(value, dict):
        out = {k: pruned(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """A small OpenAPI v3 validator (the subset the CRDs use, no CEL): offline checks."""
    errors: list[str] = []
    typ = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        None: True,
    }[typ]
    if not ok:
        return [f"{path}: {value!r} is not {typ}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if typ in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and (value <= lo if schema.get("exclusiveMinimum") else value < lo):
            errors.append(f"{path}: {value} below {lo}")
        if hi is not None and (value >= hi if schema.get("exclusiveMaximum") else value > hi):
            errors.append(f"{path}: {value} above {hi}")
    if typ == "string":
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            errors.append(f"{path}: length of {value!r}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if typ == "array":
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            errors.append(f"{path}: {len(value)} items")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    if typ == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        props = schema.get("properties", {})
        for key, sub in value.items():
            if key not in props:
                errors.append(f"{path}.{key}: field not declared in schema")
            else:
                errors += schema_errors(sub, props[key], f"{path}.{key}")
        errors += [f"{path}.{r}: required" for r in schema.get("required", []) if r not in value]
    return errors


def server_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Applies the schema's defaults the way the API server does (parents first)."""
    if isinstance(value, dict) and "properties" in schema:
        value = dict(value)
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = server_defaults(value[name], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [server_defaults(v, schema["items"]) for v in value]
    return value


# ---------------------------------------------------------------- committed output


def test_committed_crds_are_fresh() -> None:
    problems = crds.check(COMMITTED)
    assert not problems, (
        "crds/ is out of date with api/ragapi/contract.py:\n  "
        + "\n  ".join(problems)
        + "\nrun `python -m ragoperator.crds --write crds` and commit the result"
    )


def test_generation_is_deterministic_and_headed() -> None:
    first, second = crds.rendered(), crds.rendered()
    assert first == second
    assert sorted(first) == [
        "inferencepools.ragline.dev.yaml",
        "providerbudgets.ragline.dev.yaml",
        "ragindexes.ragline.dev.yaml",
    ]
    for name, text in first.items():
        assert text.startswith(
            "# generated from api/ragapi/contract.py by"
            " `python -m ragoperator.crds --write crds`; do not edit\n"
        )
        assert yaml.safe_load(text) == crds.crds()[name]


def test_write_and_check(tmp_path: Path) -> None:
    lines: list[str] = []
    assert crds.main(["--write", str(tmp_path)], out=lines.append) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(crds.rendered())
    assert crds.main(["--check", str(tmp_path)], out=lines.append) == 0

    stale = tmp_path / "ragindexes.ragline.dev.yaml"
    stale.write_text(stale.read_text().replace("default: 16", "default: 17"))
    (tmp_path / "providerbudgets.ragline.dev.yaml").unlink()
    (tmp_path / "old.ragline.dev.yaml").write_text("{}\n")
    lines.clear()
    assert crds.main(["--check", str(tmp_path)], out=lines.append) == 1
    report = "\n".join(lines)
    assert f"{stale}: stale" in report
    assert "providerbudgets.ragline.dev.yaml: missing" in report
    assert "old.ragline.dev.yaml: not generated" in report
    assert "run `python -m ragoperator.crds --write crds`" in report


def test_module_entry_point_checks_the_repo() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ragoperator.crds", "--check", "crds"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------- structural schemas


@pytest.mark.parametrize("kind", list(KIND_BY_NAME))
def test_schema_is_structural(kind: str) -> None:
    for path, node in walk(spec_of(kind)):
        where = f"{kind}{path}"
        for key in ("$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "title"):
            assert key not in node, f"{where}: {key}"
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{where}: no type"
        assert node.get("additionalProperties") is not False, f"{where}: additionalProperties"
        assert not ("properties" in node and "additionalProperties" in node), where
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(key, False), bool), f"{where}: {key} must be a boolean"
        if node.get("x-kubernetes-list-type") == "map":
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"].get("required", []), f"{where}: map key {key}"
        if "default" in node:
            assert not schema_errors(node["default"], node, where), schema_errors(
                node["default"], node, where
            )
        for rule in node.get("x-kubernetes-validations", []):
            assert set(rule) == {"rule", "message"} and rule["message"], where
    root = spec_of(kind)
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["properties"]["status"]["properties"]["observedGeneration"]["format"] == "int64"


def test_every_cel_rule_is_placed_once() -> None:
    placed = [
        rule
        for info in crds.KINDS
        for _, node in walk(spec_of(info.kind)["properties"]["spec"])
        for rule in node.get("x-kubernetes-validations", [])
    ]
    expected = [r.as_schema() for rules in crds.CEL_RULES.values() for r in rules]
    assert sorted(map(str, placed)) == sorted(map(str, expected))


def test_optional_fields_are_plain_types_and_decimals_are_strings() -> None:
    provider = spec_of("InferencePool")["properties"]["spec"]["properties"]["providers"]["items"]
    assert provider["properties"]["baseURL"] == {
        "type": "string",
        "description": "API base URL, e.g. https://api.openai.com/v1; required for openai.",
        "maxLength": 2048,
    }
    assert provider["properties"]["timeoutSeconds"]["exclusiveMinimum"] is True
    budget = spec_of("ProviderBudget")["properties"]["spec"]["properties"]
    for node in (
        budget["limit"]["properties"]["usd"],
        budget["pricing"]["items"]["properties"]["inputPer1M"],
        budget["pricing"]["items"]["properties"]["outputPer1M"],
    ):
        assert node["type"] == "string" and node["pattern"] == r"^\d+(\.\d+)?$"
    resources = spec_of("InferencePool")["properties"]["spec"]["properties"]["deployment"]
    assert resources["properties"]["resources"]["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize("text", ["0", "12", "200.00", "0.15", "0.60", "1000000.123456"])
def test_decimal_strings_the_crd_accepts_the_model_accepts(text: str) -> None:
    assert re.fullmatch(crds.DECIMAL_PATTERN, text)
    price = c.ModelPrice.model_validate({"model": "m", "inputPer1M": text, "outputPer1M": text})
    assert price.input_per1_m == Decimal(text)
    # And what the model writes back is accepted again.
    dumped = price.model_dump(by_alias=True, mode="json")["inputPer1M"]
    assert re.fullmatch(crds.DECIMAL_PATTERN, dumped)


@pytest.mark.parametrize("text", ["abc", "-1", "1.", ".5", "1e3", "1,5", " 1", ""])
def test_decimal_strings_the_crd_rejects(text: str) -> None:
    assert not re.search(crds.DECIMAL_PATTERN, text)


def test_names_columns_and_status() -> None:
    expected_columns = {
        "RagIndex": ["Phase", "Chunks", "Documents", "Age"],
        "InferencePool": ["Purpose", "Ready", "Age"],
        "ProviderBudget": ["Provider", "Period", "State", "Spent", "Age"],
    }
    short = {"RagIndex": "ri", "InferencePool": "ipool", "ProviderBudget": "pb"}
    for info in crds.KINDS:
        crd = crds.crd(info)
        names = crd["spec"]["names"]
        assert names["shortNames"] == [short[info.kind]] and names["categories"] == ["ragline"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        columns = version["additionalPrinterColumns"]
        assert [col["name"] for col in columns] == expected_columns[info.kind]
        root = version["schema"]["openAPIV3Schema"]
        for col in columns:  # every column points at a field the schema declares
            node = root
            for step in col["jsonPath"].lstrip(".").split("."):
                if step == "creationTimestamp":
                    break
                node = node["properties"][step]
        conditions = root["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) == {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
        }
    ri_status = spec_of("RagIndex")["properties"]["status"]["properties"]
    assert ri_status["phase"]["enum"] == ["Pending", "Building", "Ready", "Failed"]
    pb_status = spec_of("ProviderBudget")["properties"]["status"]["properties"]
    assert pb_status["state"]["enum"] == ["Ok", "Warning", "Exhausted"]


# ---------------------------------------------------------------- defaults agree with the models


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside ``X``, ``X | None`` or ``list[X]``, and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _nested_model(args[0])
    if origin is list and args:
        model, _ = _nested_model(args[0])
        return model, True
    return None, False


def _check_defaults(model: type[BaseModel], schema: dict[str, Any], path: str) -> int:
    checked = 0
    props = schema["properties"]
    for name, field in model.model_fields.items():
        alias = field.alias or name
        prop = props[alias]
        where = f"{path}.{alias}"
        if field.is_required():
            assert "default" not in prop, where
            assert alias in schema.get("required", []), where
        else:
            assert field.annotation is not None, where
            value = field.get_default(call_default_factory=True)
            expected = pruned(
                TypeAdapter[Any](field.annotation).dump_python(value, mode="json", by_alias=True)
            )
            if expected in (None, {}, []):
                assert "default" not in prop, where
            else:
                assert prop.get("default") == expected, where
                checked += 1
            assert alias not in schema.get("required", []), where
        sub, is_list = _nested_model(field.annotation)
        if sub is not None:
            checked += _check_defaults(sub, prop["items"] if is_list else prop, where)
    return checked


@pytest.mark.parametrize("kind", list(c.SPEC_MODELS))
def test_crd_defaults_equal_model_defaults(kind: str) -> None:
    spec = spec_of(kind)["properties"]["spec"]
    assert _check_defaults(c.SPEC_MODELS[kind], spec, "spec") > 0


MINIMAL = {
    "RagIndex": {},
    "InferencePool": {
        "purpose": "embedding",
        "providers": [{"name": "local", "type": "local"}],
        "deployment": {"image": "ghcr.io/huggingface/tei:1.5", "autoscaling": {}},
    },
    "ProviderBudget": {"poolRef": {"name": "default"}, "provider": "openai"},
}


@pytest.mark.parametrize("kind", list(MINIMAL))
def test_server_style_defaulting_gives_the_models_object(kind: str) -> None:
    spec = spec_of(kind)["properties"]["spec"]
    defaulted = server_defaults(MINIMAL[kind], spec)
    assert not schema_errors(defaulted, spec, "spec")
    model = c.SPEC_MODELS[kind].model_validate(MINIMAL[kind])
    assert defaulted == pruned(model.model_dump(by_alias=True, mode="json"))
    assert c.SPEC_MODELS[kind].model_validate(defaulted) == model


def test_a_few_defaults_by_name() -> None:
    ri = spec_of("RagIndex")["properties"]["spec"]
    assert ri["default"] == {}
    assert ri["properties"]["hnsw"]["properties"]["m"]["default"] == c.RagIndexSpec().hnsw.m == 16
    assert ri["properties"]["hnsw"]["default"] == {"m": 16, "efConstruction": 256, "efSearch": 40}
    assert ri["properties"]["distance"]["default"] == c.RagIndexSpec().distance.value
    pb = spec_of("ProviderBudget")["properties"]["spec"]
    assert pb["properties"]["alertThresholds"]["default"] == [50, 80, 100]
    assert "default" not in pb  # poolRef and provider are required
    assert spec_of("ProviderBudget")["required"] == ["spec"]


# ---------------------------------------------------------------- examples


def test_examples_validate_against_the_models_and_the_crds() -> None:
    """Every custom resource in examples/*.yaml; other kinds (Secrets, ...) are not ours."""
    problems: list[str] = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for i, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            where = f"{path.relative_to(REPO)}[{i}]"
            if not str(doc.get("apiVersion", "")).startswith(f"{c.GROUP}/"):
                continue
            if doc["apiVersion"] != c.API_VERSION or doc.get("kind") not in c.SPEC_MODELS:
                problems.append(f"{where}: unknown {doc.get('apiVersion')} {doc.get('kind')}")
                continue
            name = doc.get("metadata", {}).get("name", "")
            if not c.is_valid_name(name):
                problems.append(f"{where}: bad name {name!r}")
            try:
                c.SPEC_MODELS[doc["kind"]].model_validate(doc.get("spec", {}))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
            schema = spec_of(doc["kind"])["properties"]["spec"]
            problems += [f"{where}: {e}" for e in schema_errors(doc.get("spec", {}), schema)]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the converter


def test_unions_without_a_structural_form_are_refused() -> None:
    class Bad(BaseModel):
        x: int | str

    with pytest.raises(crds.CrdError, match="union"):
        crds.spec_schema(Bad)


def test_literals_sets_and_maps_convert() -> None:
    class Odd(BaseModel):
        mode: Literal["a"] = "a"
        tags: set[str] = set()
        labels: dict[str, str] = {}

    props = crds.spec_schema(Odd)["properties"]
    assert props["mode"] == {"type": "string", "enum": ["a"], "default": "a"}
    assert props["tags"]["x-kubernetes-list-type"] == "set"
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
