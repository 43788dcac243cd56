"""How the CLI ends when something unexpected happens: one line, the right exit code, the traceback in a log."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpotcube.cli import app

from .conftest import REPO

TINY = REPO / "recipes" / "tiny.yaml"


def boom(*args, **kwargs):
    raise RuntimeError("a bug deep inside")


def interrupt(*args, **kwargs):
    from dpotcube import crash

    with crash.stage("fields"):
        raise KeyboardInterrupt


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_unexpected_error_is_one_line_with_a_log_and_exit_1(project, monkeypatch):
    monkeypatch.setattr("dpotcube.pipeline.build", boom)
    result = CliRunner().invoke(app, ["build", str(TINY)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert message.startswith("error: unexpected RuntimeError: a bug deep inside.")
    log = message.split("the full traceback is in ")[1].split(" ")[0]
    text = Path(log).read_text()
    assert "Traceback" in text and "a bug deep inside" in text


def test_debug_shows_the_traceback(project, monkeypatch):
    monkeypatch.setattr("dpotcube.pipeline.build", boom)
    result = CliRunner().invoke(app, ["build", str(TINY), "--debug"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_ctrl_c_is_one_line_naming_the_stage_and_the_resume_command(project, monkeypatch):
    monkeypatch.setattr("dpotcube.pipeline.build", interrupt)
    result = CliRunner().invoke(app, ["build", str(TINY), "--set", "fields.steps=10"])
    assert result.exit_code == 130, result.output
    message = " ".join(result.output.split())
    assert message == (f"error: interrupted during stage `fields`; finished stages are kept in builds/tiny. Resume "
                       f"with: dpotcube build {TINY} --set fields.steps=10.")


def test_a_ctrl_c_inside_a_garbage_collection_callback_is_remembered_not_printed():
    """Python prints, then swallows, an exception raised in a gc callback (JAX registers one); the handler only
    remembers a Ctrl-C there, and the stage's end stops the build. Anywhere else it raises at once."""
    import gc
    import signal
    import sys

    from dpotcube import crash

    crash.context()
    outcomes = []

    def callback(phase, info):
        try:
            crash.interrupt_handler(signal.SIGINT, sys._getframe())
            outcomes.append("remembered")
        except KeyboardInterrupt:
            outcomes.append("raised")

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert outcomes and set(outcomes) == {"remembered"}
    with pytest.raises(KeyboardInterrupt), crash.stage("fields"):
        pass  # the remembered Ctrl-C stops the stage as it ends
    crash.context()
    with pytest.raises(KeyboardInterrupt):
        crash.interrupt_handler(signal.SIGINT, sys._getframe())


def test_corrupt_manifest_is_a_warning_and_moved_aside_by_build(project):
    from dpotcube.preflight import preflight
    from dpotcube.recipe import load_recipe

    manifest = project / "builds" / "tiny" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"stars": {"key": 1')
    result = CliRunner().invoke(app, ["validate", str(TINY)])
    assert result.exit_code == 0 and "manifest.json is corrupt" in " ".join(result.output.split()), result.output
    assert manifest.exists()  # validate changes nothing
    preflight(load_recipe(TINY)[0], repair=True)  # what `build` does before its first stage
    assert not manifest.exists() and len(list(manifest.parent.glob("manifest.corrupt-*.json"))) == 1


def test_half_copied_published_store_is_found_before_training(tiny_build, tmp_path):
    _, catalog, _ = tiny_build
    shutil.copytree(catalog.parent, tmp_path / "catalog")
    (tmp_path / "catalog" / "cubes" / "tiny.zarr" / "zarr.json").unlink()
    args = ["validate", str(TINY), "--out", str(tmp_path / "build"), "--set",
            f"publish.catalog={tmp_path / 'catalog' / catalog.name}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "is incomplete (no zarr.json); this build publishes it again" in " ".join(result.output.split())


def test_unwritable_build_folder_is_refused_before_any_work(project, monkeypatch):
    """Root writes anywhere, so the folder's refusal is simulated where the probe writes its temporary file."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("dpotcube.preflight.tempfile.TemporaryFile", refuse)
    result = CliRunner().invoke(app, ["build", str(TINY)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "The build folder (--out) builds/tiny is not writable" in message and "Permission denied" in message
    assert not (project / "builds").exists()
