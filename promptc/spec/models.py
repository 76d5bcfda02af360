"""The spec file's schema, as pydantic models. Unknown keys are errors everywhere.

Steps (one model per `module:`) are in `spec/steps.py`, constraints (one per `check:`) in
`spec/constraints.py`, metrics (one per `type:`) in `metrics/config.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from promptc.lm.base import Price
from promptc.metrics.config import MetricConfig
from promptc.retrieve.config import RetrieverConfig
from promptc.spec.steps import StepDecl, check_name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LMConfig(Strict):
    """How to reach one LM. `model: offline` is the built-in offline LM (no key, no network)."""

    model: str = "offline"
    provider: Literal["openai", "offline"] | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    concurrency: int = Field(default=16, ge=1, le=4096)
    rpm: int | None = Field(default=None, gt=0, description="requests per minute")
    tpm: int | None = Field(default=None, gt=0, description="tokens per minute")
    rate_limit_patience: float = Field(default=300.0, gt=0, description="seconds of nothing but HTTP 429 "
                                       "(rate limited) before the run stops")
    cache: bool = True
    max_prompt_tokens: int = Field(default=100_000, ge=1, description=(
        "refuse (as that row's error) a prompt estimated above this many tokens, before sending it"))

    @property
    def resolved_provider(self) -> str:
        if self.provider:
            return self.provider
        return "offline" if self.model in ("offline", "promptc/offline") else "openai"


class EmbedderConfig(Strict):
    """How to reach a text-embedding model (OpenAI-compatible `/v1/embeddings`): used by
    optimizers that pick demos per input by similarity (knn_few_shot)."""

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    batch_size: int = Field(default=64, ge=1, le=2048, description="texts per request")
    cache: bool = True


class FieldDecl(Strict):
    """A field given as a mapping: `{type: float, desc: ...}`, `{type: enum, values: [...]}`."""

    type: str = "str"
    desc: str = ""
    values: list[str] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


FieldValue = str | FieldDecl


class SignatureDecl(Strict):
    instructions: str = ""
    inputs: dict[str, FieldValue] = Field(default_factory=dict)
    outputs: dict[str, FieldValue]


class StateVarDecl(Strict):
    """A loop variable: `{type: list[str], append: retrieve.passages, dedupe: true}`."""

    type: str = "list[str]"
    init: Any = None
    append: str | None = None
    set: str | None = None
    dedupe: bool = False


class RepeatDecl(Strict):
    """`repeat: N` with a `name`, local `state` and a body of `steps`."""

    repeat: int = Field(ge=1, le=100)
    name: str
    state: dict[str, StateVarDecl] = Field(default_factory=dict)
    steps: list[NodeDecl] = Field(min_length=1)
    when: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


class CaseDecl(Strict):
    """One case of a branch: `{when: "...", steps: [...]}`; the last may be `{else: true, steps: [...]}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    when: str | None = None
    otherwise: bool = Field(default=False, alias="else")
    steps: list[NodeDecl] = Field(min_length=1)


class BranchDecl(Strict):
    """`branch: NAME` with `cases:` tried in order."""

    branch: str
    cases: list[CaseDecl] = Field(min_length=1)
    when: str | None = None

    @field_validator("branch")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("repeat", "branch"):
            if key in value:
                return key
        return "step"
    return "step"


NodeDecl = Annotated[
    Annotated[StepDecl, Tag("step")] | Annotated[RepeatDecl, Tag("repeat")] | Annotated[BranchDecl, Tag("branch")],
    Discriminator(_node_kind),
]


class ToolDecl(Strict):
    """A tool for react steps: a Python callable by import path, or a retriever."""

    python: str | None = None
    retriever: str | None = None
    k: int = Field(default=3, ge=1, le=100)
    description: str | None = None


class DataDecl(Strict):
    train: str | None = None
    dev: str | None = None
    test: str | None = None


class OptimizerDecl(BaseModel):
    """`optimizer: {name: random_search, num_candidates: 8, ...}` — settings checked at compile."""

    model_config = ConfigDict(extra="allow")

    name: str = "bootstrap_few_shot"

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SpecDocument(Strict):
    """The root of a spec file."""

    version: Literal[1] = 1
    name: str = "program"
    description: str = ""
    lm: LMConfig | None = None
    lms: dict[str, LMConfig] = Field(default_factory=dict)
    embedder: EmbedderConfig | None = Field(default=None, description="text embeddings for demo selection")
    signatures: dict[str, SignatureDecl] = Field(default_factory=dict)
    program: list[NodeDecl] | str = Field(
        description="a list of steps/loops/branches, or a Python Module by import path 'pkg.mod:Class'")
    retrievers: dict[str, RetrieverConfig] = Field(default_factory=dict)
    tools: dict[str, ToolDecl] = Field(default_factory=dict)

    @field_validator("program")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("must have at least 1 item, got 0")
        return v
    data: DataDecl | None = None
    prices: dict[str, Price] = Field(default_factory=dict, description="USD per 1M tokens, by model")
    metric: MetricConfig | list[MetricConfig] | None = Field(
        default=None, description="how `eval` and `compile` score a prediction")
    optimizer: OptimizerDecl | None = None


RepeatDecl.model_rebuild()
CaseDecl.model_rebuild()
BranchDecl.model_rebuild()
SpecDocument.model_rebuild()
