"""Run a benchmark and write what it printed, with the machine and the date, into its section of
docs/performance.md (between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`).

    python benchmarks/record.py probe [ARGS ...]     # runs benchmarks/bench_probe.py ARGS
    python benchmarks/record.py kernel_spread         # runs benchmarks/kernel_spread.py

The page holds each benchmark's last recorded run; earlier runs are in the file's history.
A run that fails writes nothing.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"


def machine() -> str:
    """CPU model, cores, Python, numpy and its BLAS (library, version, kernels), torch if present."""
    code = ("import platform, numpy, threadpoolctl\n"
            "b = [i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']\n"
            "print(f'numpy {numpy.__version__}', end='')\n"
            "print(''.join(f\", {i['internal_api']} {i['version']} ({i.get('architecture')} kernels)\" for i in b[:1]), end='')\n"
            "try:\n    import torch; print(f', torch {torch.__version__}', end='')\nexcept ImportError: pass\n")
    libs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, {libs}"


def write_section(name: str, text: str, page: Path = PAGE) -> None:
    body = page.read_text(encoding="utf-8")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start not in body or end not in body:
        sys.exit(f"{page}: has no section {start} ... {end}")
    before, rest = body.split(start, 1)
    _, after = rest.split(end, 1)
    page.write_text(f"{before}{start}\n{text.rstrip()}\n{end}{after}", encoding="utf-8")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    name, args = argv[0], argv[1:]
    script = ROOT / "benchmarks" / (f"{name}.py" if name == "kernel_spread" else f"bench_{name}.py")
    if not script.is_file():
        sys.exit(f"no benchmark {script.name}")
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    res = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(res.stdout)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-3000:])
        return res.returncode
    command = " ".join(["python", f"benchmarks/{script.name}", *args])
    out = re.sub(r"\s+$", "", res.stdout, flags=re.M)
    write_section(name, f"Last run {when} (load average {load:.1f} at the start): `{command}` on {machine()}.\n\n"
                        f"```text\n{out}\n```")
    print(f"wrote its section of {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
