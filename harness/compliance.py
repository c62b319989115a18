"""Run MLPerf's own compliance checker with our rules (benchmark/compliance/) on a log.

The checker is called in-process through its library API, which is what
`python -m mlperf_logging.compliance_checker --usage hpc --config <rules> <log>` runs;
`checker_command` gives that command line, which `harness check` prints with a failing log.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import benchmark

COMPLIANCE_DIR = Path(benchmark.__file__).resolve().parent / "compliance"
USAGE = "hpc"
RULESET = "6.1.0"  # the checker's default; it only selects the log parser (identical since 3.0.0)


@dataclass
class ComplianceResult:
    log: Path
    passed: bool
    messages: list[str] = field(default_factory=list)  # why it failed
    warnings: list[str] = field(default_factory=list)


def rules_file(benchmark_name: str) -> Path:
    path = COMPLIANCE_DIR / f"{benchmark_name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in COMPLIANCE_DIR.glob("*.yaml") if p.stem != "common")
        raise ValueError(f"no compliance rules for benchmark {benchmark_name!r}; known: {', '.join(known)}")
    return path


def checker_command(log: Path, benchmark_name: str) -> list[str]:
    return [sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", USAGE,
            "--config", str(rules_file(benchmark_name)), str(Path(log).resolve())]


@contextmanager
def _checker_logging_silenced():
    """The checker reports through the root logger; keep it off the user's terminal."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def check_log(log: Path, benchmark_name: str) -> ComplianceResult:
    """Check one MLPerf log against the benchmark's rules."""
    from mlperf_logging.compliance_checker import mlp_compliance

    rules = rules_file(benchmark_name)
    mlp_compliance.enqueued_configs.clear()  # module-level queue: start from a clean one
    checker = mlp_compliance.make_checker(USAGE, RULESET, quiet=False, werror=False)
    with _checker_logging_silenced():
        passed = checker.check_file(str(log), str(rules))
    messages = [*checker.overwritable.values(), *checker.not_overwritable]
    return ComplianceResult(log=Path(log), passed=bool(passed), messages=messages,
                            warnings=list(checker.warnings.values()))
