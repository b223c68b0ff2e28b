"""Exit 0 when a container of the project image is healthy, else 1 (its health checks and probes).

    python /app/infra/compose/healthcheck.py http://127.0.0.1:5000/health
    python /app/infra/compose/healthcheck.py --process "mlops serve" http://prefect-server:4200/api/health

Every URL must answer 2xx within 5 seconds. With --process, a live process must run that command:
its arguments, file names without their folders, hold the words in a row ("mlops serve" matches
`/usr/local/bin/python /usr/local/bin/mlops serve --use-case all`). The standard library only: the
image has neither curl nor ps.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from pathlib import Path


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 200 <= response.status < 300
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return False


def running(command: str, proc: Path = Path("/proc")) -> bool:
    words = command.split()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # ended meanwhile, or not ours to read
        names = [Path(argument).name for argument in arguments]
        if state not in {"Z", "X"} and any(names[i:i + len(words)] == words for i in range(len(names))):
            return True
    print(f"no process runs {command!r}", file=sys.stderr)
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", help="words of a command that must be running")
    parser.add_argument("urls", nargs="*", help="URLs that must answer 2xx")
    args = parser.parse_args(argv)
    if not args.process and not args.urls:
        parser.error("nothing to check")
    healthy = not args.process or running(args.process)
    return 0 if healthy and all(answers(url) for url in args.urls) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
