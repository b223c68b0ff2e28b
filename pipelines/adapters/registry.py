"""The MLflow model registry adapter: versions, aliases, champion history, loading models.

``champion`` is the version that serves; ``challenger`` is the newest candidate. Every move of
``champion`` (automatic or by hand) is pushed on a history kept as a registered-model tag, which is
what ``rollback`` walks back through, and is explained on the version itself.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.promotion import DECISION_TAG, INTENDED_TAG, INTERRUPTED, PENDING, PROMOTED
from pipelines.adapters import integrity, tracking_store
from pipelines.adapters.tracker import Tracker, quiet_pickle_warning
from pipelines.config.errors import MlopsError
from pipelines.config.project import Project

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
EVENTS_TAG = "champion_events"
# Registered-model tags have a length limit; old events beyond this are dropped, versions are not.
_MAX_EVENTS = 30


class RegistryError(MlopsError):
    """A model, version or alias the command needs does not exist, or a move is not allowed."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def logged_model_id(model_uri: str) -> str | None:
    """``m-...`` of a ``models:/m-...`` URI of a logged model; None for any other source."""
    if model_uri.startswith("models:/m-"):
        return model_uri.removeprefix("models:/").split("/")[0]
    return None


def parse_reference(reference: str) -> tuple[str, str]:
    """``MODEL@ALIAS`` or ``MODEL/VERSION`` (or ``MODEL`` for its champion) to a name and a selector."""
    if "@" in reference:
        name, _, alias = reference.partition("@")
        return name, f"@{alias}"
    if "/" in reference:
        name, _, version = reference.partition("/")
        return name, version
    return reference, f"@{CHAMPION}"


class Registry:
    """The registered models of one project's MLflow store."""

    def __init__(self, project: Project) -> None:
        self.tracker = Tracker(project)
        self.client = self.tracker.client

    # --- reading ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def registered_model(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException:
            known = ", ".join(self.names()) or "none yet"
            raise RegistryError(f"no registered model '{name}' (registered: {known})") from None

    def version_by_alias(self, name: str, alias: str) -> Any:
        """The version holding ``alias``, None when none does; the model itself must exist."""
        from mlflow.exceptions import MlflowException

        self.registered_model(name)
        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def champion(self, name: str) -> Any:
        """The champion version of ``name``; None when the model or its champion does not exist yet."""
        try:
            return self.version_by_alias(name, CHAMPION)
        except RegistryError:
            return None

    def require_champion(self, name: str, use_case: str) -> Any:
        """The champion version, or a one-line error saying how to get one."""
        try:
            champion = self.version_by_alias(name, CHAMPION)
        except RegistryError:
            raise RegistryError(f"no champion for model '{name}': run `mlops run --use-case {use_case}` "
                                "first") from None
        if champion is None:
            raise RegistryError(f"no champion for model '{name}': no version has been promoted; run "
                                f"`mlops run --use-case {use_case}` or `mlops promote {name} VERSION` first")
        return champion

    def version(self, name: str, number: str) -> Any:
        from mlflow.exceptions import MlflowException

        self.registered_model(name)
        try:
            return self.client.get_model_version(name, str(number))
        except MlflowException:
            raise RegistryError(f"model '{name}' has no version {number}") from None

    def versions(self, name: str) -> list[Any]:
        """Every version of ``name``, newest first."""
        found = self.client.search_model_versions(f"name='{name}'")
        return sorted(found, key=lambda v: -int(v.version))

    def resolve(self, reference: str) -> Any:
        name, selector = parse_reference(reference)
        if not selector.startswith("@"):
            return self.version(name, selector)
        found = self.version_by_alias(name, selector[1:])
        if found is None:
            raise RegistryError(f"model '{name}' has no version with alias '{selector[1:]}'")
        return found

    def history(self, name: str) -> list[str]:
        """Champion versions, oldest first; the last one is the current champion."""
        raw = self.registered_model(name).tags.get(HISTORY_TAG, "")
        return [v for v in raw.split(",") if v]

    def events(self, name: str) -> list[dict[str, Any]]:
        raw = self.registered_model(name).tags.get(EVENTS_TAG, "[]")
        try:
            return list(json.loads(raw))
        except json.JSONDecodeError:
            return []

    def load_model(self, name: str, version: str) -> Any:
        """The fitted pipeline of ``name`` version ``version``, once its files match their fingerprint.

        Versions registered before fingerprints were recorded carry none and load unchecked.
        """
        import mlflow.artifacts
        import mlflow.sklearn

        recorded = self.version(name, version).tags.get(integrity.DIGEST_TAG)
        quiet_pickle_warning()
        with tempfile.TemporaryDirectory(prefix="mlops-model-") as folder, \
                tracking_store.service_errors(self.tracker.uri):
            local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=folder))
            integrity.verify(local, recorded, f"model {name} v{version}")
            return mlflow.sklearn.load_model(str(local))

    def champion_document(self, name: str, path: str) -> tuple[str | None, dict[str, Any] | None]:
        """(champion version, a JSON artifact of its run); Nones when there is no champion or artifact."""
        champion = self.champion(name)
        if champion is None or not champion.run_id:
            return None, None
        return str(champion.version), self.tracker.read_document(champion.run_id, path)

    # --- writing ----------------------------------------------------------------------------

    def register(self, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str) -> Any:
        """A new version of ``name`` (created on first use) from a logged model, aliased challenger,
        with the fingerprint of its files."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(
                name, description=f"Champion/challenger models of use case '{tags.get('use_case', name)}'.")
        tags = {**tags, integrity.DIGEST_TAG: self._digest(model_uri)}
        # A server checks that the source belongs to the logged model named by its id.
        version = self.client.create_model_version(name, model_uri, run_id=run_id, tags=tags,
                                                   description=description,
                                                   model_id=logged_model_id(model_uri))
        self.client.set_registered_model_alias(name, CHALLENGER, str(version.version))
        return version

    def _digest(self, model_uri: str) -> str:
        import mlflow.artifacts

        with tempfile.TemporaryDirectory(prefix="mlops-model-") as folder, \
                tracking_store.service_errors(self.tracker.uri):
            local = mlflow.artifacts.download_artifacts(model_uri, dst_path=folder)
            return integrity.folder_digest(Path(local))

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)

    def _record_event(self, name: str, event: dict[str, Any]) -> None:
        logged = [*self.events(name), event][-_MAX_EVENTS:]
        self.client.set_registered_model_tag(name, EVENTS_TAG, json.dumps(logged))

    def set_champion(self, name: str, version: str, reason: str, actor: str) -> None:
        """Move ``champion`` to ``version`` and push it on the history."""
        self.version(name, version)
        previous = self.version_by_alias(name, CHAMPION)
        stack = self.history(name)
        if previous is not None and (not stack or stack[-1] != str(previous.version)):
            # The alias was moved outside this tool (e.g. in the MLflow UI): keep the history honest.
            stack.append(str(previous.version))
        stack.append(str(version))
        when = _now()
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        self.client.set_registered_model_tag(name, HISTORY_TAG, ",".join(stack))
        self.client.set_model_version_tag(name, str(version), "champion.since", when)
        self.client.set_model_version_tag(name, str(version), "champion.reason", reason)
        self.client.set_model_version_tag(name, str(version), "champion.by", actor)
        if previous is not None and str(previous.version) != str(version):
            self.client.set_model_version_tag(name, str(previous.version), "champion.until", when)
        self._record_event(name, {"time": when, "action": "promote", "version": str(version),
                                     "previous": str(previous.version) if previous else None,
                                     "by": actor, "reason": reason})


    def settle_pending(self, name: str, dead_cycles: set[str]) -> list[str]:
        """Decisions a dead cycle left ``pending``, set to what happened; returns one line each.

        ``champion`` moves before the decision tag is final, so a pending promotion whose version
        holds ``champion`` was carried out; any other pending promotion was not.
        """
        if not dead_cycles:
            return []
        champion = self.champion(name)
        settled = []
        for version in self.client.search_model_versions(f"name='{name}'"):
            tags = version.tags
            if tags.get(DECISION_TAG) != PENDING or tags.get("parent_run_id") not in dead_cycles:
                continue
            intended = tags.get(INTENDED_TAG, PROMOTED)
            done = intended != PROMOTED or (champion is not None
                                            and str(champion.version) == str(version.version))
            outcome = intended if done else INTERRUPTED
            self.client.set_model_version_tag(name, str(version.version), DECISION_TAG, outcome)
            self.tracker.set_tags(tags["parent_run_id"], {DECISION_TAG: outcome})
            settled.append(f"{name} v{version.version}: decision of a stopped cycle settled as '{outcome}'")
        self.repair_history(name)
        return settled

    def repair_history(self, name: str) -> None:
        """The history ends with the current champion (a move may have stopped before recording it)."""
        champion = self.champion(name)
        if champion is None:
            return  # nothing served yet, or no model registered at all: there is no history to end
        stack = self.history(name)
        if not stack or stack[-1] != str(champion.version):
            self.client.set_registered_model_tag(name, HISTORY_TAG, ",".join([*stack, str(champion.version)]))

    def rollback(self, name: str, reason: str, actor: str) -> tuple[str, str]:
        """Give ``champion`` back to the champion before the current one; returns (from, to) versions."""
        current = self.version_by_alias(name, CHAMPION)
        if current is None:
            raise RegistryError(f"model '{name}' has no champion to roll back")
        stack = self.history(name)
        while stack and stack[-1] == str(current.version):
            stack.pop()
        if not stack:
            raise RegistryError(f"model '{name}' has no earlier champion than v{str(current.version)}")
        target = stack[-1]
        when = _now()
        self.client.set_registered_model_alias(name, CHAMPION, target)
        self.client.set_registered_model_tag(name, HISTORY_TAG, ",".join(stack))
        self.client.set_model_version_tag(name, str(current.version), "champion.until", when)
        self.client.set_model_version_tag(name, str(current.version), "champion.rolled_back",
                                          f"{when}: {reason}")
        self.client.set_model_version_tag(name, target, "champion.since", when)
        self.client.set_model_version_tag(name, target, "champion.reason",
                                     f"rollback from v{str(current.version)}: {reason}")
        self.client.set_model_version_tag(name, target, "champion.by", actor)
        self._record_event(name, {"time": when, "action": "rollback", "version": target,
                                     "previous": str(current.version), "by": actor, "reason": reason})
        return str(current.version), target
