from pathlib import Path

import pytest

from shared.db import SHARED_MIGRATIONS, migration_files

SERVICES = Path(__file__).parents[2] / "services"


@pytest.mark.parametrize("folder", [SHARED_MIGRATIONS, *sorted(SERVICES.glob("*/migrations"))], ids=str)
def test_migrations_are_numbered_from_one_without_gaps(folder: Path) -> None:
    versions = [version for version, _ in migration_files(folder)]
    assert versions == list(range(1, len(versions) + 1))


def test_a_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("")
    with pytest.raises(ValueError, match="NNNN_lowercase_name.sql"):
        migration_files(tmp_path)
