"""The steps of a spec's `program:`, one model per `module:` (default: predict).

Each module declares only the options it uses, with their defaults, here and nowhere
else; an option of another module is reported as "option 'n' does not apply to module
'predict' (it is for best_of_n, refine)" (see `promptc.core.variants`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Tag, field_validator

from promptc.core.variants import Variants
from promptc.metrics.config import MetricConfig
from promptc.spec.constraints import ConstraintConfig

RETRIEVE_SIGNATURE = "query -> passages: list[str]"


def check_name(v: str, what: str = "") -> str:
    """A step, loop or branch name: letters, digits, '_' and '-', and not 'input'."""
    if not v.replace("_", "a").replace("-", "a").isalnum() or v == "input":
        label = f"{what} name" if what else "name"
        raise ValueError(f"invalid {label} {v!r} (letters, digits, '_' and '-'; not 'input')")
    return v


class StepBase(BaseModel):
    """What every step has: a name, a signature, input bindings and an optional condition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    step: str = Field(description="the step's name, unique in the program")
    signature: str = Field(description="a name under `signatures:` or an inline 'a, b -> c: float'")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="bindings: input field -> 'input.NAME' or 'STEP.FIELD'; unbound fields bind by name",
    )
    when: str | None = Field(default=None, description="run only when this condition holds")

    @field_validator("step")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "step")


class LMStep(StepBase):
    """A step that prompts an LM: its prompt, demos, LM and output constraints."""

    lm: str | None = Field(default=None, description="a name under `lms:`")
    instructions: str | None = None
    demos: list[dict[str, Any]] = Field(default_factory=list)
    asserts: list[ConstraintConfig] = Field(default_factory=list, alias="assert")
    suggest: list[ConstraintConfig] = Field(default_factory=list)
    max_retries: int = Field(default=2, ge=0, le=10, description="self-refinement retries for constraints")


class PredictStep(LMStep):
    """predict, or chain_of_thought (which adds `reasoning` before the outputs)."""

    module: Literal["predict", "chain_of_thought"] = "predict"
    json_mode: bool = False


class RetrieveStep(StepBase):
    """A query in, the top-k passages out, from a named retriever (no LM)."""

    module: Literal["retrieve"]
    signature: str = RETRIEVE_SIGNATURE
    retriever: str | None = Field(default=None, description="a name under `retrievers:` "
                                  "(may be left out when there is only one)")
    k: int = Field(default=3, ge=1, le=1000, description="passages to return")


class ReActStep(LMStep):
    """A tool-using agent."""

    module: Literal["react"]
    tools: list[str] = Field(min_length=1, description="names under `tools:`")
    max_iters: int = Field(default=5, ge=1, le=50, description="tool-call iterations")


class SamplingStep(LMStep):
    """best_of_n / refine: `n` attempts at `temperature`, kept by a `reward` metric."""

    module: Literal["best_of_n", "refine"]
    reward: MetricConfig = Field(description="a metric that scores each attempt: `type:` or `python:`")
    n: int = Field(default=3, ge=1, le=50, description="attempts")
    threshold: float | None = Field(default=None, ge=0, le=1, description="good enough: stop early")
    temperature: float = Field(default=0.7, ge=0, le=2, description="sampling temperature of attempts")


class MultiChainStep(LMStep):
    """`m` reasoning attempts compared into a final answer."""

    module: Literal["multi_chain_comparison"]
    m: int = Field(default=3, ge=1, le=20, description="attempts")
    temperature: float = Field(default=0.7, ge=0, le=2, description="sampling temperature of attempts")


StepDecl = Annotated[
    Annotated[PredictStep, Tag("predict")]
    | Annotated[PredictStep, Tag("chain_of_thought")]
    | Annotated[RetrieveStep, Tag("retrieve")]
    | Annotated[ReActStep, Tag("react")]
    | Annotated[SamplingStep, Tag("best_of_n")]
    | Annotated[SamplingStep, Tag("refine")]
    | Annotated[MultiChainStep, Tag("multi_chain_comparison")],
    Variants(key="module", noun="module", default="predict"),
]
"""One step of the program; `module:` picks the model and defaults to predict."""

AnyStep = PredictStep | RetrieveStep | ReActStep | SamplingStep | MultiChainStep

__all__ = ["RETRIEVE_SIGNATURE", "AnyStep", "LMStep", "MultiChainStep", "PredictStep", "ReActStep",
           "RetrieveStep", "SamplingStep", "StepBase", "StepDecl", "check_name"]
