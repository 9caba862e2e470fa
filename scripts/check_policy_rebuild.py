"""Rebuild shipped starting policies by their manifests' commands and check the result.

Usage::

    .venv/bin/python scripts/check_policy_rebuild.py household household-novice [--json OUT]

For each named folder of ``spear/models/pretrained/``: run the command its manifest records
(``scripts/build_starting_policy.py ...``) into a temporary folder, then compare.

* **identical**: every file the weights and tokenizer live in has the shipped sha256.
* **within the interval**: the weights differ (float order differs between CPU kinds, see
  docs/DESIGN.md, "Reproducible builds"), but the rebuilt policy's held-out success at the
  evaluation temperature lies inside the shipped policy's 95% interval, on the same episodes.
* **differs**: neither; the exit code is then 1.

It also says whether this machine matches the one the manifest records (CPU model and the
kernels torch dispatches to, package versions): a bit-for-bit comparison is only expected
where they match. Not part of CI: a household rebuild takes 5 to 35 minutes of one core.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the files the build's numbers live in (manifest.json itself records times and dates)
COMPARED = ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json")


def rebuild(folder: Path, manifest: dict, out: Path) -> float:
    """Run the manifest's command with ``--out out``; returns the wall seconds."""
    argv = shlex.split(manifest["command"])
    if argv[:2] != ["python", "scripts/build_starting_policy.py"]:
        raise SystemExit(f"{folder}: the manifest's command is not the builder's: {manifest['command']}")
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv[1:], "--out", str(out)], cwd=ROOT, check=True)
    return time.perf_counter() - start


def check(name: str) -> dict:
    from spear.experiments.starting_policy import machine_info, package_versions
    from spear.models.shipped import file_digest, pretrained_root, verify_starting_policy

    folder = pretrained_root() / name
    shipped = verify_starting_policy(folder)
    with tempfile.TemporaryDirectory(prefix="spear-rebuild-") as tmp:
        out = Path(tmp) / name
        seconds = rebuild(folder, shipped, out)
        rebuilt = json.loads((out / "manifest.json").read_text())
        same_files = {f: file_digest(out / f)[1] == shipped["files"][f]["sha256"] for f in COMPARED}
    low, high = shipped["eval"]["success_ci"]
    success = rebuilt["eval"]["success_rate"]
    same_episodes = rebuilt["eval"]["settings"] == shipped["eval"]["settings"] and (
        rebuilt["eval"]["episodes"] == shipped["eval"]["episodes"]
    )
    if all(same_files.values()):
        verdict = "identical"
    elif same_episodes and low <= success <= high:
        verdict = "within the interval"
    else:
        verdict = "differs"
    here = {"machine": machine_info(), "versions": package_versions()}
    return {
        "policy": name,
        "verdict": verdict,
        "files_identical": same_files,
        "shipped_success": shipped["eval"]["success_rate"],
        "shipped_interval": [low, high],
        "rebuilt_success": success,
        "same_episodes": same_episodes,
        "rebuild_seconds": round(seconds, 1),
        "same_cpu": all(
            here["machine"][key] == shipped["machine"].get(key) for key in ("cpu", "cpu_capability")
        ),
        "same_versions": here["versions"] == shipped.get("versions"),
        "shipped_machine": shipped["machine"],
        "shipped_versions": shipped.get("versions"),
        **here,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policies", nargs="+", help="folders of spear/models/pretrained (e.g. household)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = []
    for name in args.policies:
        result = check(name)
        results.append(result)
        print(
            f"{name}: {result['verdict']} (success {100 * result['rebuilt_success']:.1f}% rebuilt, "
            f"{100 * result['shipped_success']:.1f}% shipped, interval "
            f"{100 * result['shipped_interval'][0]:.1f}-{100 * result['shipped_interval'][1]:.1f}%; "
            f"same CPU model: {result['same_cpu']}, same package versions: {result['same_versions']}; "
            f"rebuilt in {result['rebuild_seconds']:.0f} s on {result['machine']['cpu']})",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["verdict"] != "differs" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
