"""The fleet's CI definition, .github/workflows/toolkits.yml (README, Scaling past one machine): actionlint (with
shellcheck on every `run:` script) passes on it and fails on a broken copy; its measure job runs doctor, pull, repro
without a run-cache, push and commit in that order, per {toolkit x host} on self-hosted runners, into a results
branch named after the host; and every make target it calls is one the test suite runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "toolkits.yml"
BIN = Path(sys.executable).parent
#: the make targets the workflow calls -> the test file that runs each through `make`
EXERCISED = {"setup": "test_toolkits.py", "doctor": "test_toolkits.py", "repro": "test_toolkits.py",
             "compare": "test_toolkits.py"}
#: added on main with its own tests (BASE, HEAD, MODEL, BS, FAIL_ON); referenced here, not run
ABTEST = "abtest"


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    for tool in ("actionlint", "shellcheck"):
        assert (BIN / tool).is_file(), f"{tool} missing: `make setup` installs it (the dev extra)"
    return subprocess.run([str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), str(path)],
                          capture_output=True, text=True)


def _jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_actionlint_and_shellcheck_pass() -> None:
    r = _actionlint(WORKFLOW)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(("broken", "finding"), [
    (("${{ matrix.host }}", "${{ matrix.hots }}"), r'property "hots" is not defined'),
    (('"$RESULTS"', "$RESULTS"), r"SC2086"),  # shellcheck: an unquoted variable in a run script
    (("TOOLKIT: ${{ matrix.toolkit }}", "TOOLKIT: ${{ matrix.toolkit }}\n      TITLE: x"), None),
])
def test_actionlint_fails_on_a_broken_copy(tmp_path: Path, broken: tuple[str, str], finding: str | None) -> None:
    """The check can fail: a typo in a matrix key, an unquoted shell variable; a harmless edit still passes."""
    copy = tmp_path / ".github" / "workflows" / "toolkits.yml"
    copy.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    assert broken[0] in text
    copy.write_text(text.replace(broken[0], broken[1]))
    r = _actionlint(copy)
    if finding is None:
        assert r.returncode == 0, r.stdout
    else:
        assert r.returncode != 0 and re.search(finding, r.stdout), r.stdout


def test_every_toolkit_is_measured_on_every_host_into_that_hosts_results() -> None:
    measure = _jobs()["measure"]
    assert set(measure["strategy"]["matrix"]) == {"toolkit", "host"}
    assert measure["runs-on"] == ["self-hosted", "${{ matrix.host }}"]
    assert measure["env"]["RESULTS"] == "results/${{ matrix.host }}/${{ matrix.toolkit }}"
    order = ["make doctor", "dvc pull", "make repro", "dvc push",
             'git push -q --force-with-lease origin "HEAD:refs/heads/$RESULTS"']
    script = "\n".join(_runs(measure))
    at = [script.find(step) for step in order]
    assert -1 not in at and at == sorted(at), dict(zip(order, at, strict=True))
    assert "--run-cache" not in WORKFLOW.read_text()  # `make repro` passes --no-run-cache; nothing pulls one
    assert "secret_access_key" in script and "--local" in script  # credentials only in .dvc/config.local


def test_the_verdicts_come_from_within_one_host_with_the_gate() -> None:
    verdicts = _jobs()["verdicts"]
    assert verdicts["needs"] == "measure" and verdicts["runs-on"][0] == "self-hosted"
    script = "\n".join(_runs(verdicts))
    assert 'make compare BASE="results/$host/$base" HEAD="results/$host/$toolkit" FAIL_ON=regression' in script
    assert 'make abtest BASE="$base" HEAD="$toolkit" FAIL_ON=regression' in script
    assert '>> "$GITHUB_STEP_SUMMARY"' in script


def test_every_make_target_it_calls_is_run_by_the_test_suite() -> None:
    called = set(re.findall(r"\bmake ([a-z][\w-]*)", "\n".join(r for job in _jobs().values() for r in _runs(job))))
    assert called >= {"setup", "doctor", "repro", "compare", ABTEST}
    targets = set(re.findall(r"(?m)^([a-z][\w-]*):", (ROOT / "Makefile").read_text()))
    assert called - {ABTEST} <= targets, called - targets
    for target in called - {ABTEST}:
        source = (ROOT / "tests" / EXERCISED[target]).read_text()
        assert re.search(rf'make\(\w+, "{target}"', source), f"make {target}: no test in {EXERCISED[target]} runs it"
