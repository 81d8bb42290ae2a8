"""The contract between supervisor and worker: one JSON document in, one JSON document out.

Modelled on pyperf's master/worker split: the supervisor never imports LumiBot, it sends a
self-contained run spec on the worker's stdin and reads exactly one versioned JSON document
from its stdout. This module is stdlib-only so the supervisor can import it cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PROTOCOL_VERSION = 1

#: Fields every worker answer must carry; the supervisor rejects a document missing any.
REQUIRED_ANSWER_FIELDS = (
    "protocol",
    "id",
    "ok",
    "partial",
    "wall_seconds_total",
    "cpu_seconds",
    "files",
    "invariants_in_effect",
)

#: Error kinds a worker may report. Only ``transient`` is retried by the supervisor.
ERROR_KINDS = ("import", "config", "backtest", "no_data", "transient", "terminated")


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to reproduce one run, with no access to the plan file."""

    id: str
    start: str
    end: str
    label: str
    strategy: str
    parameters: dict[str, Any]
    invariants: dict[str, Any]
    data_source: dict[str, Any]
    output_dir: str
    work_dir: str
    cache_folder: str
    search_path: list[str]
    budget: float = 100_000.0
    seed: int = 0
    profile: bool = True
    memory: str = ""
    """The memory pass: ``memray`` (tracemalloc if memray cannot run) around the backtest; empty otherwise."""
    progress: bool = True
    """Write ``progress.json`` in the work folder (:mod:`common.progress`); off only to measure its cost."""
    output_stem: str = ""
    supervisor_pid: int = 0
    backtest_options: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File-name stem of this run's outputs (a warm-up pass writes under its own stem)."""
        return self.output_stem or self.id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> RunSpec:
        """Build a spec from decoded JSON, naming the first missing or mistyped field."""
        if not isinstance(doc, dict):
            raise ValueError("run spec must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"run spec has unknown field(s): {', '.join(unknown)}")
        try:
            return cls(**doc)
        except TypeError as exc:
            raise ValueError(f"run spec is incomplete: {exc}") from exc


@dataclass
class Answer:
    """The worker's one JSON document. ``ok`` is False with ``error`` set on any failure."""

    id: str
    ok: bool = False
    partial: bool = False
    wall_seconds_total: float | None = None
    cpu_seconds: float | None = None
    worker_seconds: float | None = None
    files: dict[str, str] = field(default_factory=dict)
    invariants_in_effect: dict[str, Any] = field(default_factory=dict)
    parameters_hash: str | None = None
    iterations: int | None = None
    bars_served: int | None = None
    history_calls: int | None = None
    internal_bars_served: int | None = None
    internal_history_calls: int | None = None
    sleeptime: Any = None
    sleeptime_seconds: float | None = None
    phases: dict[str, Any] | None = None
    backtest_options: dict[str, Any] = field(default_factory=dict)
    browser: dict[str, Any] = field(default_factory=dict)
    lumibot_outputs: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    time_by_owner: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    """The memory pass's capture: tool, file, fallback reason (:meth:`worker.memory.MemoryCapture.record`)."""
    """Seconds by owner class from yappi's self times (the cross-check replaces it with the sampled table)."""
    versions: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    network_refused: list[str] = field(default_factory=list)
    cache_files_before: int | None = None
    cache_files_after: int | None = None
    fingerprint: dict[str, Any] | None = None
    error_kind: str | None = None
    error: str | None = None
    protocol: int = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
