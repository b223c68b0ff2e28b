"""Reading use case definitions: every problem is one line naming the file, the key and what is allowed."""

from __future__ import annotations

import json
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipelines.config.errors import UseCaseError
from pipelines.config.project import Project
from pipelines.config.usecase import PER_TASK_FIELDS, UseCase

SCHEMA_FILE = "usecase.schema.json"
# Keys a definition must have; everything else has a default.
REQUIRED_KEYS = ["dataset", "expectations", "key", "target", "candidates"]


def available(project: Project) -> list[str]:
    return sorted(p.stem for p in project.usecases_dir.glob("*.yaml"))


def load(project: Project, name: str) -> UseCase:
    path = project.usecases_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available(project)) or "none defined"
        raise UseCaseError(f"unknown use case '{name}' (available: {known})")
    return parse(path)


def resolve(project: Project, name: str) -> list[UseCase]:
    """``all`` means every defined use case, in name order."""
    if name == "all":
        return [load(project, n) for n in available(project)]
    return [load(project, name)]


def parse(path: Path) -> UseCase:
    """The definition in ``path``; a UseCaseError lists every problem, one line each."""
    raw = _read(path)
    if raw.get("name", path.stem) != path.stem:
        raise UseCaseError(f"{path.name}: name: '{raw['name']}' must match the file name ('{path.stem}')")
    try:
        return UseCase.model_validate({"name": path.stem, **raw})
    except ValidationError as exc:
        raise UseCaseError.from_problems([f"{path.name}: {line}" for line in problems(exc)]) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise UseCaseError(f"{path.name}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise UseCaseError(f"{path.name}: must be a mapping of keys to values")
    return raw


def problems(error: ValidationError) -> list[str]:
    """One line per problem: the key path, then what is wrong and what is allowed."""
    lines: list[str] = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_key(loc))
        elif item["type"] == "missing":
            lines.append(f"missing key '{'.'.join(loc)}'")
        elif item["type"] == "value_error":
            message = item["msg"].removeprefix("Value error, ")
            prefix = f"{'.'.join(loc)}: " if loc else ""
            lines += [prefix + line for line in message.splitlines()]
        elif item["type"] == "too_short":
            least = item.get("ctx", {}).get("min_length", 1)
            lines.append(f"{'.'.join(loc)}: must list at least {least} item(s), got {item.get('input')!r}")
        else:
            message = item["msg"].replace("Input should be", "must be")
            lines.append(f"{'.'.join(loc)}: {message}, got {item.get('input')!r}")
    return lines


def _unknown_key(loc: list[str]) -> str:
    allowed = _keys_at(loc[:-1])
    near = get_close_matches(loc[-1], allowed, n=1, cutoff=0.6)
    where = f" in {'.'.join(loc[:-1])}" if len(loc) > 1 else ""
    hint = f" (did you mean '{near[0]}'?)" if near else f" (allowed: {', '.join(allowed)})"
    return f"unknown key '{loc[-1]}'{where}{hint}"


def _keys_at(loc: list[str]) -> list[str]:
    """The keys allowed at ``loc``: the fields of the model found by walking the path."""
    model: type[BaseModel] = UseCase
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            continue  # a mapping's own key, such as a candidate's name
        nested = _model_in(field.annotation)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


# --- the JSON Schema editors use ----------------------------------------------------------

def json_schema() -> dict[str, Any]:
    """The schema of a definition file as written: per-task forms, short forms, optional defaults."""
    schema = UseCase.model_json_schema(mode="validation")
    schema["title"] = "mlops use case definition"
    properties = schema["properties"]
    for name in PER_TASK_FIELDS:
        properties[name] = _per_task(properties[name])
    scoring = schema["$defs"]["Scoring"]["properties"]
    scoring["score"] = _per_task(scoring["score"])
    properties["key"] = {"anyOf": [{"type": "string"}, properties["key"]],
                         "description": properties["key"].get("description", "")}
    candidates = properties["candidates"]
    candidates["additionalProperties"] = {"anyOf": [candidates["additionalProperties"], {"type": "null"}]}
    properties["candidates"] = {"anyOf": [candidates, {"type": "array", "items": {"type": "string"}}],
                                "description": candidates.get("description", "")}
    for name in ("Candidate", "Split", "Scoring"):
        schema["$defs"][name]["required"] = []
    schema["required"] = REQUIRED_KEYS
    return schema


def _per_task(field: dict[str, Any]) -> dict[str, Any]:
    single = {k: v for k, v in field.items() if k not in ("description", "title")}
    per_task = {"type": "object", "additionalProperties": False,
                "properties": {"classification": single, "regression": single}}
    return {"anyOf": [single, per_task], "description": field.get("description", "")}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"
