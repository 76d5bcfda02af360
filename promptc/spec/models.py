"""The spec file's schema, as pydantic models. Unknown keys are errors everywhere."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promptc.lm.base import Price
from promptc.metrics.config import MetricConfig


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
    cache: bool = True

    @property
    def resolved_provider(self) -> str:
        if self.provider:
            return self.provider
        return "offline" if self.model in ("offline", "promptc/offline") else "openai"


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


class StepDecl(Strict):
    """One step of the program."""

    step: str = Field(description="the step's name, unique in the program")
    module: Literal["predict", "chain_of_thought"] = "predict"
    signature: str = Field(description="a name under `signatures:` or an inline 'a, b -> c: float'")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="bindings: input field -> 'input.NAME' or 'STEP.FIELD'; unbound fields bind by name",
    )
    lm: str | None = Field(default=None, description="a name under `lms:`")
    json_mode: bool = False
    instructions: str | None = None
    demos: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("step")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.replace("_", "a").replace("-", "a").isalnum() or v in ("input",):
            raise ValueError(f"invalid step name {v!r} (letters, digits, '_' and '-'; not 'input')")
        return v


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
    signatures: dict[str, SignatureDecl] = Field(default_factory=dict)
    program: list[StepDecl] = Field(min_length=1)
    data: DataDecl | None = None
    prices: dict[str, Price] = Field(default_factory=dict, description="USD per 1M tokens, by model")
    metric: MetricConfig | list[MetricConfig] | None = Field(
        default=None, description="how `eval` and `compile` score a prediction")
    optimizer: OptimizerDecl | None = None
