"""`fold bench` runs end to end on a small bucket, and Fold's counts equal DuckDB's."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fold.bench.suite import CASES
from fold.cli.main import cli


def test_bench_runs_and_agrees_with_duckdb(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    env = {
        "FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'bench.db'}",
        "FOLD_DATA_DIR": str(tmp_path),
    }
    args = [
        "bench",
        "--people",
        "400",
        "--other-people",
        "100",
        "--runs",
        "3",
        "--output",
        str(output),
    ]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert [r["segment"] for r in report["results"]] == [c.name for c in CASES]
    assert len(CASES) >= 14
    assert report["count_mismatches_with_duckdb"] == []
    summary = report["summary"]
    assert summary["create_p50_ms"] > 0 and summary["import_records_per_second"] > 0
    # The server ran in its own process and answered over HTTP; its memory is its own.
    assert summary["server_peak_rss_mb"] > 0
    assert all(r["http_count_p50_ms"] > 0 and r["ratio_to_duckdb"] > 0 for r in report["results"])
    assert summary["count_after_write_p50_ms"] > 0
    assert "summary:" in result.output
    # Every issue-18 target is reported beside its figure; the heavy ones say "not run".
    targets = {(t["section"], t["name"]): t for t in report["targets"]}
    sections = {section for section, _ in targets}
    assert sections == {
        "deep pages", "sorts", "contacts", "warm start", "processes", "writers", "import",
        "bulk jobs", "tenants",
    }  # fmt: skip
    for target in report["targets"]:
        assert target["goal"] and target["unit"] is not None
        if target["section"] in ("bulk jobs", "tenants"):
            assert target["holds"] is None and target["measured"] is None
        else:
            assert target["measured"] is not None and target["holds"] in (True, False)
    # Exactness is not traded: every write of the 16 writers was in the next count.
    writers = report["sections"]["writers"]
    assert writers["checked"] == 160 and writers["missing_from_next_count"] == 0
    assert writers["errors"] == []
    assert report["sections"]["pages"]["contacts"]["contacts in leeds"]["count"] >= 0
    assert "warm start" in result.output and "holds" in result.output
    # The restart found the catalogue the first server made (fold.columns.catalogue).
    assert "made its stores' catalogues" in result.output
    assert report["sections"]["warm_start"]["fresh_field_ms"] > 0


def test_bench_heavy_sections(tmp_path: Path) -> None:
    """Bulk jobs (with their undo) and many tenants run when asked for."""
    output = tmp_path / "results.json"
    env = {"FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}", "FOLD_DATA_DIR": str(tmp_path)}
    args = ["bench", "--people", "300", "--other-people", "100", "--runs", "3",
            "--sections", "none", "--no-references", "--jobs", "--tenants", "2",
            "--tenant-people", "100",
            "--tenants-seconds", "1", "--output", str(output)]  # fmt: skip
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    jobs = report["sections"]["jobs"]["jobs"]
    assert [j["job"] for j in jobs] == [
        "add_tag", "set-single-field", "undo set-single-field", "undo add_tag",
    ]  # fmt: skip
    assert all(j["status"] == "completed" and j["total"] >= 300 for j in jobs)
    assert all(j["records"] == j["total"] for j in jobs)
    tenants = report["sections"]["tenants"]
    assert tenants["buckets"] == 2 and tenants["requests"] > 0 and tenants["errors"] == []
    measured = {t["section"] for t in report["targets"] if t["holds"] is not None}
    assert {"bulk jobs", "tenants", "import"} <= measured
    # Nothing timed beside the index (--no-references): no ratio to a reference either.
    assert report["summary"]["count_p50_geomean_ms"] > 0
    assert report["summary"]["ratio_to_duckdb"] is None
    bad = CliRunner().invoke(cli, ["bench", "--sections", "pages,nope"], env=env)
    assert bad.exit_code == 2 and "nope" in bad.output


def test_bench_writers_alone(tmp_path: Path) -> None:
    """`--only` matching no case with `--sections writers`: the writers section alone, on a
    server of two processes; every write is in the next count, whichever answered it."""
    output = tmp_path / "results.json"
    env = {"FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "FOLD_DATA_DIR": str(tmp_path)}
    args = ["bench", "--people", "200", "--other-people", "100", "--runs", "3",
            "--only", "zzz-none", "--sections", "writers", "--no-references",
            "--writers-seconds", "1", "--writers-workers", "2",
            "--output", str(output)]  # fmt: skip
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["results"] == [] and report["summary"]["count_p50_geomean_ms"] is None
    assert {t["section"] for t in report["targets"]} == {"writers"}
    writers = report["sections"]["writers"]
    assert writers["workers"] == 2 and writers["writes"] > 0 and writers["errors"] == []
    assert writers["checked"] == 160 and writers["missing_from_next_count"] == 0


def test_bench_jobs(tmp_path: Path) -> None:
    env = {"FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}", "FOLD_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["bench", "jobs", "--people", "500"], env=env)
    assert result.exit_code == 0, result.output
    assert "add_tag: 500 records" in result.output


def test_bench_exports(tmp_path: Path) -> None:
    env = {"FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'ex.db'}", "FOLD_DATA_DIR": str(tmp_path)}
    output = tmp_path / "exports.json"
    args = ["bench", "exports", "--people", "300", "--output", str(output)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert [r["format"] for r in report["results"]] == ["csv", "xlsx", "pdf", "labels"]
    for row in report["results"]:
        assert row["records"] == 300 and 0 < row["rows"] <= 300
        assert (
            row["records_per_second"] >= row["rows_per_second"] > 0
            and row["peak_rss_mb"] > 0
            and row["file_mb"] >= 0
        )
    bad = CliRunner().invoke(cli, ["bench", "exports", "--formats", "csv,doc"], env=env)
    assert bad.exit_code == 2 and "doc" in bad.output
