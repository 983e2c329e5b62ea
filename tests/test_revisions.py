"""Reading another revision (omzoo.results.revisions) in a tiny git repository: files at a commit, a branch, a
remote-only branch and the workspace; params.yaml at a revision; unknown revisions and failing dvc commands as
one clear message; DVC-tracked files through the cache, or the command that would fetch them."""

from __future__ import annotations

from pathlib import Path

import pytest
from dvc_helpers import dvc, pipeline_env
from git_helpers import commit, git, new_repo, write

from omzoo.core.params import ParamsError, command
from omzoo.results import revisions
from omzoo.results.revisions import DvcError, NotAvailable


def test_a_file_is_read_as_committed_at_each_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    first = commit(repo, {"notes.txt": "one\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"notes.txt": "two\n", "more.txt": "new\n"})
    write(repo, {"notes.txt": "three (not committed)\n"})
    assert revisions.read_text(first, "notes.txt") == "one\n"
    assert revisions.read_text("main", "notes.txt") == "one\n"
    assert revisions.read_text("feature", "notes.txt") == "two\n"
    assert revisions.read_text("workspace", "notes.txt") == "three (not committed)\n"
    assert revisions.read_text("main", "more.txt") is None  # added later, on the branch
    assert revisions.read_text("workspace", "absent.txt") is None
    assert revisions.read_text("no-such-branch", "notes.txt") is None


def test_json_that_is_missing_or_broken_reads_as_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"m.json": {"top1": 75.0}, "broken.json": "{not json"})
    assert revisions.read_json("main", "m.json") == {"top1": 75.0}
    assert revisions.read_json("main", "broken.json") is None
    assert revisions.read_json("main", "absent.json") is None


def test_a_remote_only_branch_is_accepted_like_dvc_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    sha = commit(repo, {"notes.txt": "fetched\n"})
    git(repo, "update-ref", "refs/remotes/origin/cann-8.1", sha)  # what `git fetch` leaves for a remote branch
    revisions.check_revision("cann-8.1")
    revisions.check_revision("workspace")
    assert revisions.read_text("cann-8.1", "notes.txt") == "fetched\n"


def test_an_unknown_revision_is_named_with_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"notes.txt": "x\n"})
    git(repo, "tag", "v1")
    with pytest.raises(ValueError, match=r"unknown revision 'cann-9\.9'.*local branches and tags: main, v1"):
        revisions.check_revision("cann-9.9")


def test_params_at_a_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "models: {m_a: {}}\nbatch_sizes: [1, 8]\n"})
    write(repo, {"params.yaml": "batch_sizes: [32]\n"})
    assert (list(revisions.read_params("main").models), revisions.read_params("main").batch_sizes) == (["m_a"], [1, 8])
    assert revisions.read_params("workspace").batch_sizes == [32]
    commit(repo, {"params.yaml": None}, "no params")
    assert revisions.read_params("main").raw == {}  # a revision without params.yaml: nothing asked for
    commit(repo, {"params.yaml": "models: [unclosed\n"}, "broken")
    with pytest.raises(ParamsError, match=r"main:params\.yaml: not valid YAML"):
        revisions.read_params("main")
    commit(repo, {"params.yaml": "- a list\n"}, "a list")
    with pytest.raises(ParamsError, match=r"main:params\.yaml: must be a YAML mapping"):
        revisions.read_params("main")


def test_a_command_reads_each_revisions_params_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "batch_sizes: [1, 8]\n"})
    reads: list[tuple[str, str]] = []
    real = revisions.read_text
    monkeypatch.setattr(revisions, "read_text", lambda rev, path: reads.append((rev, path)) or real(rev, path))
    with command():
        first = revisions.read_params("main")
        assert revisions.read_params("main") is first and revisions.read_params("workspace").batch_sizes == [1, 8]
    assert reads == [("main", "params.yaml"), ("workspace", "params.yaml")]
    revisions.read_params("main")  # outside a command (a library call): read afresh
    assert len(reads) == 3


def test_the_fetch_command_checks_the_revision_out_only_for_another_revision() -> None:
    assert revisions.fetch_command("workspace", "models/infer/m") == "dvc pull models/infer/m"
    assert revisions.fetch_command("cann-8.1", "models/infer/a models/infer/b") == \
        "git checkout cann-8.1 && dvc fetch models/infer/a models/infer/b && git checkout -"


def test_a_failing_dvc_command_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no DVC repository here
    with pytest.raises(DvcError, match=r"^`dvc metrics diff --json main` failed: .+") as e:
        revisions.dvc_json(["metrics", "diff", "--json", "main"])
    assert "\n" not in str(e.value)


def test_a_tracked_file_comes_from_the_cache_or_names_its_fetch(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    env = pipeline_env()
    dvc(repo, env, "init", "-q")
    write(repo, {"models/infer/m/predictions.json": {"names": ["a.jpg"]}})
    dvc(repo, env, "add", "-q", "models/infer/m")
    commit(repo, {}, "tracked predictions")
    path = "models/infer/m/predictions.json"
    assert revisions.read_tracked("main", path) == b'{"names": ["a.jpg"]}'
    with pytest.raises(NotAvailable, match="not among main's DVC outputs") as e:
        revisions.read_tracked("main", "models/infer/other/predictions.json")
    assert e.value.fetch == ""  # fetching cannot help: that revision never wrote it
    for gone in (repo / ".dvc" / "cache", repo / "models" / "infer" / "m"):
        git(repo, "clean", "-qfdX", str(gone))  # the cache and the output, both git-ignored
    assert not (repo / "models" / "infer" / "m").exists()
    with pytest.raises(NotAvailable, match="neither in this DVC cache nor on a remote") as e:
        revisions.read_tracked("main", path)
    assert e.value.fetch == "models/infer/m"
    assert "`git checkout main && dvc fetch models/infer/m && git checkout -`" in str(e.value)
