"""loupe/pgvector.py: the local stack's pgvector is the vendored release, compiled on this machine."""

from pathlib import Path

from loupe import pgvector
from loupe.servers import bootstrap_failure, pg_install


def test_the_vendored_pgvector_is_the_release_whose_sql_the_wheel_installs() -> None:
    assert pgvector.vendored_version() == pgvector.installed_version(pg_install())


def test_make_install_put_the_portable_build_in_place_of_the_wheels(tmp_path: Path) -> None:
    """The wheel's own library needs AVX-512 (SIGILL elsewhere); the installed one is what a portable build of
    the vendored source makes here, byte for byte."""
    built = pgvector.build(pg_install(), tmp_path)
    installed = pg_install() / "lib" / "postgresql" / "vector.so"
    assert built.read_bytes() == installed.read_bytes(), "run `python -m loupe.pgvector` (make install does)"


def test_a_postgres_that_dies_on_the_bootstrap_vector_is_reported_with_the_fix() -> None:
    died = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n"
    assert "python -m loupe.pgvector" in str(bootstrap_failure(5432, "", died))
    refused = 'ERROR:  extension "vector" is not available\n'
    assert str(bootstrap_failure(5432, "", refused)) == f"bootstrapping postgres on 127.0.0.1:5432 failed:\n{refused}"
