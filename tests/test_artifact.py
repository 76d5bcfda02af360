"""Program artifacts: round trip, spec mismatch, and `run --program`."""

from __future__ import annotations

import json

import pytest

from promptc.artifacts.program_file import ProgramArtifact, apply_artifact, load_artifact
from promptc.errors import UsageError
from promptc.spec.loader import load
from tests.conftest import ROOT, run_cli

SPEC = ROOT / "specs" / "support_reply.yaml"


def test_round_trip_keeps_the_whole_graph(tmp_path):
    program = load(SPEC).program
    program.steps[0].module.demos = [{"message": "I lost my card", "intent": "card_lost"}]
    path = ProgramArtifact.from_program(program, provenance={"seed": 1}).save(tmp_path / "build")
    assert path.name == "program.json"
    artifact = load_artifact(tmp_path / "build")
    rebuilt = artifact.build(program.lms)
    assert [s.name for s in rebuilt.steps] == ["classify", "reply"]
    assert rebuilt.steps[0].module.demos == program.steps[0].module.demos
    assert rebuilt.steps[1].module.signature == program.steps[1].module.signature
    assert str(rebuilt.bindings(rebuilt.steps[1].name)["intent"]) == "classify.intent"
    assert artifact.provenance == {"seed": 1}


def test_mismatch_says_what_differs(tmp_path):
    program = load(SPEC).program
    artifact = ProgramArtifact.from_program(program)
    artifact.steps[1].signature = artifact.steps[1].signature.model_copy(
        update={"outputs": artifact.steps[1].signature.outputs[:1]})
    artifact.steps.pop(0)
    with pytest.raises(UsageError) as info:
        apply_artifact(program, artifact)
    msg = str(info.value)
    assert "step 'classify' is in the spec but not in the artifact" in msg
    assert "step 'reply': outputs differ" in msg


def test_run_with_program_uses_its_demos(tmp_path):
    program = load(ROOT / "specs" / "intent.yaml").program
    train = [json.loads(x) for x in (ROOT / "datasets/intent/train.jsonl").read_text().splitlines()]
    program.steps[0].module.demos = train[:48]
    ProgramArtifact.from_program(program).save(tmp_path / "build")
    dev = ROOT / "datasets/intent/dev.jsonl"
    plain, tuned = tmp_path / "plain.jsonl", tmp_path / "tuned.jsonl"
    assert run_cli("run", "specs/intent.yaml", "-i", str(dev), "-o", str(plain)).returncode == 0
    result = run_cli("run", "specs/intent.yaml", "--program", str(tmp_path / "build"), "-i", str(dev),
                     "-o", str(tuned))
    assert result.returncode == 0, result.stderr

    def accuracy(path):
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        return sum(r["intent"] == r["_input"]["intent"] for r in rows) / len(rows)

    assert accuracy(tuned) > accuracy(plain) + 0.1
    bad = run_cli("run", "specs/math.yaml", "--program", str(tmp_path / "build"), "-i", str(dev),
                  "-o", str(tmp_path / "x.jsonl"))
    assert bad.returncode == 2 and "does not match the spec" in bad.stderr
    shown = run_cli("inspect", "specs/intent.yaml", "--program", str(tmp_path / "build"))
    assert shown.returncode == 0 and shown.stdout.count("[[ ## intent ## ]]") > 40


def test_bad_artifact_files(tmp_path):
    (tmp_path / "program.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a JSON program artifact"):
        load_artifact(tmp_path)
    (tmp_path / "program.json").write_text('{"schema_version": 99}')
    with pytest.raises(UsageError, match="schema_version 99"):
        load_artifact(tmp_path)
    with pytest.raises(UsageError, match="no program artifact"):
        load_artifact(tmp_path / "missing")
