"""Makes the virtual environment the SDK tests run OpenAI's Python SDK in.

    python3 venv.py VENV REQUIREMENT      # e.g. target/openai-venv openai==3.57.0

Several test processes may ask at once (`cargo test` runs test binaries side
by side): an exclusive `flock` on `VENV.lock` lets one of them build it while
the others wait, and the kernel lets go of the lock if that one dies, so a
killed run leaves no lock behind. The venv counts as made only once
`VENV/installed.txt` names the requirement: a half-made one (pip failed, the
run was killed) is thrown away and made again.
"""

import fcntl
import pathlib
import shutil
import subprocess
import sys


def main() -> None:
    venv = pathlib.Path(sys.argv[1])
    requirement = sys.argv[2]
    marker = venv / "installed.txt"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == requirement:
            return
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                requirement,
            ],
            check=True,
        )
        marker.write_text(requirement)


if __name__ == "__main__":
    main()
